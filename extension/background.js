// yttl extension, background worker: the only part that talks to `yttl serve` (content
// scripts are bound by the page's origin). Pairing comes from the options page, or from
// the native messaging host `yttl extension install` registers, which starts the server
// when it is not running and hands over its URL and token.
// The token never leaves this worker for a content script: they get data only, and the
// server gets only canonical watch URLs (docs/security.md).
"use strict";

const api = globalThis.browser ?? globalThis.chrome;
const HOST = "org.yttl.serve";
const YOUTUBE_LINKS = ["https://www.youtube.com/watch*", "https://youtu.be/*",
  "https://m.youtube.com/watch*", "https://www.youtube.com/shorts/*"];

const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;

// The id of a YouTube video URL (watch, youtu.be, shorts, live, embed), else null.
function videoIdOf(url) {
  let parsed;
  try { parsed = new URL(String(url)); } catch (error) { return null; }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
  const host = parsed.hostname.toLowerCase().replace(/^(www|m|music)\./, "");
  let id = null;
  if (host === "youtube.com" || host === "youtube-nocookie.com") {
    if (parsed.pathname === "/watch") id = parsed.searchParams.get("v");
    else id = (parsed.pathname.match(/^\/(?:shorts|live|embed|v)\/([^/?#]+)/) || [])[1] || null;
  } else if (host === "youtu.be") {
    id = parsed.pathname.split("/")[1] || null;
  }
  return id && VIDEO_ID.test(id) ? id : null;
}

// The one URL the server is ever sent: https://www.youtube.com/watch?v=ID, nothing else
// (a list= would make a playlist job, any other parameter is the page's to choose).
function canonical(message) {
  const id = typeof message.id === "string" && VIDEO_ID.test(message.id) ? message.id : videoIdOf(message.url);
  if (!id) throw new YttlError("Not a YouTube video.", "input");
  return "https://www.youtube.com/watch?v=" + id;
}

class YttlError extends Error {
  constructor(message, kind) { super(message); this.kind = kind; }
}

async function pairing() {
  const stored = await api.storage.local.get(["server", "token"]);
  if (stored.server && stored.token) return {server: stored.server.replace(/\/+$/, ""), token: stored.token};
  return pairNatively();
}

async function pairNatively() {
  let answer;
  try {
    answer = await api.runtime.sendNativeMessage(HOST, {command: "pair"});
  } catch (error) {
    throw new YttlError("Not paired with yttl serve: run `yttl extension install` once, or " +
      "open the extension's options and paste the server URL and token (yttl serve --print-token).", "unpaired");
  }
  if (!answer || !answer.url || !answer.token) {
    throw new YttlError((answer && answer.error) || "The yttl host gave no server: run `yttl serve` and try again.", "unpaired");
  }
  const paired = {server: answer.url.replace(/\/+$/, ""), token: answer.token};
  await api.storage.local.set({...paired, pairedBy: "native"});
  return paired;
}

const encoder = new TextEncoder();

function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

// Before the token goes to `server`, the server shows it holds it, as it does to the
// native host: a fresh nonce, and HMAC(token, port and nonce) back. The URL kept from an
// earlier pairing may by now be another program's port, or the options a mistyped one.
async function proveServer(server, token) {
  const nonce = hex(crypto.getRandomValues(new Uint8Array(32)));
  const response = await fetch(server + "/api/v1/challenge", {  // throws when nothing listens
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({nonce}),
  });
  const body = await response.json().catch(() => ({}));
  const url = new URL(server);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const key = await crypto.subtle.importKey("raw", encoder.encode(token), {name: "HMAC", hash: "SHA-256"},
    false, ["sign"]);
  const expected = hex(await crypto.subtle.sign("HMAC", key, encoder.encode(`yttl serve challenge\n${port}\n${nonce}`)));
  if (!body || body.proof !== expected) {
    throw new YttlError(`The server at ${server} refused the token, or is not the yttl serve it belongs to: ` +
      "pair again in the extension's options (yttl serve --print-token).", "token");
  }
}

async function call(path, options = {}) {
  let {server, token} = await pairing();
  for (let attempt = 0; attempt < 2; attempt++) {
    let response;
    try {
      await proveServer(server, token);
      response = await fetch(server + "/api/v1" + path, {
        method: options.method || "GET",
        headers: {"Authorization": "Bearer " + token,
                  ...(options.body ? {"Content-Type": "application/json"} : {})},
        body: options.body ? JSON.stringify(options.body) : undefined,
      });
    } catch (error) {
      const stored = await api.storage.local.get(["pairedBy"]);
      if (attempt === 0 && stored.pairedBy === "native") {  // the host finds or starts the right one
        await api.storage.local.remove(["server", "token"]);
        ({server, token} = await pairNatively());
        continue;
      }
      if (error instanceof YttlError) throw error;
      throw new YttlError(`yttl serve is not running at ${server}: start it with \`yttl serve\`.`, "down");
    }
    if (response.status === 401) {
      throw new YttlError("yttl serve refused the token: pair again in the extension's options " +
        "(yttl serve --print-token).", "token");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new YttlError(body.error || `yttl serve answered HTTP ${response.status}.`, "server");
    return body;
  }
}

async function waitForJob(id, onProgress) {
  for (;;) {
    const job = await call("/jobs/" + encodeURIComponent(id));
    if (onProgress) onProgress(job);
    if (!["queued", "running"].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// A job as the options page set it up: {slides: true} when "Find and read slides" is on.
async function newJob(url) {
  const stored = await api.storage.local.get(["slides"]);
  const body = {sources: [url]};
  if (stored.slides) body.options = {slides: true};
  return call("/jobs", {method: "POST", body});
}

// A slide's image, fetched with the token (the page cannot), as a data: URL for the panel.
async function slideImage(videoId, number) {
  const {server, token} = await pairing();
  const response = await fetch(`${server}/slides/${encodeURIComponent(videoId)}/${Number(number)}`,
    {headers: {"Authorization": "Bearer " + token}});
  if (!response.ok) throw new YttlError(`yttl serve has no such slide (HTTP ${response.status}).`, "server");
  const bytes = new Uint8Array(await response.arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  const type = (response.headers.get("Content-Type") || "image/jpeg").split(";")[0];
  return `data:${type === "image/webp" ? type : "image/jpeg"};base64,${btoa(binary)}`;
}

async function summarize(url, tabId) {
  const job = await newJob(url);
  const done = await waitForJob(job.id, (state) => {
    if (tabId !== undefined) api.tabs.sendMessage(tabId, {type: "progress", job: state}).catch(() => {});
  });
  return done;
}

function videoIdOrFail(id) {
  if (typeof id !== "string" || !VIDEO_ID.test(id)) throw new YttlError("Not a YouTube video.", "input");
  return id;
}

// What a content script may ask: data only, never the token or the server's address.
const handlers = {
  async lookup(message) { return call("/lookup?url=" + encodeURIComponent(canonical(message))); },
  async video(message) { return call("/videos/" + encodeURIComponent(String(message.id))); },
  async start(message) { return newJob(canonical(message)); },
  async slide(message) { return slideImage(String(message.id), message.number); },
  async job(message) { return call("/jobs/" + encodeURIComponent(String(message.id))); },
  async ask(message) {
    return call("/ask", {method: "POST", body: {question: String(message.question), video_id: String(message.videoId)}});
  },
  async threads(message) { return call("/chats?video_id=" + encodeURIComponent(videoIdOrFail(message.videoId))); },
  async thread(message) { return call("/chats/" + encodeURIComponent(String(message.id))); },
};

// What only the extension's own pages (its options page) may ask.
const pageHandlers = {
  async save(message) {
    await api.storage.local.set({server: message.server, token: message.token, pairedBy: "options"});
    return call("/videos").then((videos) => ({ok: true, videos: videos.length}));
  },
  async findServer() { await api.storage.local.remove(["server", "token"]); return pairNatively(); },
};

function fromExtensionPage(sender) {
  return sender.id === api.runtime.id && !!sender.url && sender.url.startsWith(api.runtime.getURL(""));
}

// -- chat: the answer streams from yttl serve (server-sent events on a fetch response),
// and each piece goes to the content script by a port. The token stays here.

async function* serverEvents(response) {
  const reader = response.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const step = await reader.read();
    if (step.done) return;
    buffer = (buffer + decoder.decode(step.value, {stream: true})).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield [kind, JSON.parse(data.join("\n"))];
    }
  }
}

async function chatAnswer(message, post, signal) {
  const videoId = videoIdOrFail(message.videoId);
  let thread = typeof message.thread === "string" && message.thread ? message.thread : null;
  if (!thread) {
    thread = (await call("/chats", {method: "POST", body: {video_ids: [videoId]}})).id;
    post({type: "thread", id: thread});
  }
  const {server, token} = await pairing();
  let response;
  try {
    response = await fetch(server + "/api/v1/chats/" + encodeURIComponent(thread) + "/messages", {
      method: "POST",
      headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json",
                "Accept": "text/event-stream"},
      body: JSON.stringify({content: String(message.question)}),
      signal,
    });
  } catch (error) {
    if (signal.aborted) return;
    throw new YttlError(`yttl serve is not running at ${server}: start it with \`yttl serve\`.`, "down");
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new YttlError(body.error || `yttl serve answered HTTP ${response.status}.`, "server");
  }
  for await (const [kind, data] of serverEvents(response)) {
    if (kind === "token") post({type: "token", text: data.text});
    else if (kind === "restart") post({type: "restart"});
    else if (kind === "done") return post({type: "done", answer: data});
    else if (kind === "error") return post({type: "error", error: data.error});
  }
  post({type: "error", error: "The connection ended before the answer did."});
}

// Only this extension's own scripts may open the port (a content script of a YouTube
// tab, or its pages); it carries questions in and answer pieces out, never the token.
api.runtime.onConnect.addListener((port) => {
  if (port.name !== "yttl-chat" || !port.sender || port.sender.id !== api.runtime.id) {
    port.disconnect();
    return;
  }
  let open = true;
  // the tab closed or the panel went: stop reading the answer, so the server stops the
  // call (nobody pays for it) and keeps no half answer, as a page's own fetch would
  const reading = new AbortController();
  port.onDisconnect.addListener(() => { open = false; reading.abort(); });
  const post = (message) => { if (open) port.postMessage(message); };
  port.onMessage.addListener((message) => {
    if (!message || message.type !== "ask" || typeof message.question !== "string") return;
    chatAnswer(message, post, reading.signal).catch((error) => post({type: "error", error: error.message || String(error)}));
  });
});

api.runtime.onMessage.addListener((message, sender, reply) => {
  if (!message || typeof message.type !== "string" || sender.id !== api.runtime.id) return false;
  const own = Object.prototype.hasOwnProperty;
  const handler = own.call(handlers, message.type) ? handlers[message.type] :
    own.call(pageHandlers, message.type) && fromExtensionPage(sender) ? pageHandlers[message.type] : null;
  if (!handler) return false;
  handler(message, sender).then(
    (value) => reply({ok: true, value}),
    (error) => reply({ok: false, error: error.message || String(error), kind: error.kind || "error"}),
  );
  return true;  // the reply comes later
});

function setUpMenus() {
  api.contextMenus.removeAll(() => {
    api.contextMenus.create({id: "yttl-summarize-link", title: "Summarize with yttl",
                             contexts: ["link"], targetUrlPatterns: YOUTUBE_LINKS});
  });
}
api.runtime.onInstalled.addListener(setUpMenus);
api.runtime.onStartup && api.runtime.onStartup.addListener(setUpMenus);

api.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId !== "yttl-summarize-link" || !info.linkUrl) return;
  const id = videoIdOf(info.linkUrl);
  if (!id) return;
  summarize(canonical({id}), tab && tab.id).then(
    (job) => tab && api.tabs.sendMessage(tab.id, {type: "notice", text: `yttl: ${job.status} — ${info.linkUrl}`}).catch(() => {}),
    (error) => tab && api.tabs.sendMessage(tab.id, {type: "notice", text: error.message}).catch(() => {}),
  );
});

api.action.onClicked.addListener((tab) => {
  if (tab.url && /youtube\.com\/(watch|shorts)/.test(tab.url)) {
    api.tabs.sendMessage(tab.id, {type: "toolbar"}).catch(() => {});
  } else {
    api.runtime.openOptionsPage();
  }
});
