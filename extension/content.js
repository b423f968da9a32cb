// yttl extension, content script on YouTube: a button beside the title that knows whether
// the video is in the library, a panel with the summary whose timestamps seek the player,
// and a chat over the video. YouTube is a single-page app: all of it follows the navigation.
// The page's own scripts are not trusted: the extension acts on trusted (user) events
// only, and the panel lives in a closed shadow root, which they cannot read or drive.
(function () {
  "use strict";
  const api = globalThis.browser ?? globalThis.chrome;
  const TITLES = ["ytd-watch-metadata h1", "#above-the-fold #title h1", "h1.ytd-watch-metadata",
    "#title h1", "ytd-video-primary-info-renderer h1", "h1.title"];
  const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;
  let current = null;   // the video id the button is for
  let documentCache = null;

  function send(message) {
    return new Promise((resolve, reject) => {
      api.runtime.sendMessage(message, (answer) => {
        const failure = api.runtime.lastError;
        if (failure) return reject(new Error("The yttl extension was reloaded: reload this page."));
        if (!answer) return reject(new Error("No answer from the yttl extension."));
        answer.ok ? resolve(answer.value) : reject(new Error(answer.error));
      });
    });
  }

  function videoId() {  // only the id: the background makes the one URL the server gets
    const url = new URL(location.href);
    const id = url.pathname === "/watch" ? url.searchParams.get("v") :
      (url.pathname.match(/^\/shorts\/([^/?#]+)/) || [])[1];
    return id && VIDEO_ID.test(id) ? id : null;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value; else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  }

  function stamp(seconds) {
    return el("a", {"href": `#t=${Math.floor(seconds)}`, "data-yttl-t": String(Math.floor(seconds))}, clock(seconds));
  }

  // -- the button ------------------------------------------------------------------------

  let theButton = null;  // kept even before it has a place in the page
  function button() { return theButton; }

  function setState(state, label, title) {
    const b = button();
    if (!b) return;
    b.dataset.yttlState = state;
    b.textContent = label;
    b.title = title || label;
  }

  function placeButton() {
    let b = button();
    if (!b) {
      b = theButton = el("button", {"type": "button", "data-yttl": "summarize", "data-yttl-state": "idle"}, "Summarize");
      b.addEventListener("click", (event) => { if (event.isTrusted) onButton(); });
    }
    const started = Date.now();
    (function attempt() {
      const title = TITLES.map((s) => document.querySelector(s)).find(Boolean);
      if (title) {  // beside the title, whenever it shows up
        b.classList.remove("yttl-floating");
        if (b.previousElementSibling !== title) title.insertAdjacentElement("afterend", b);
        return;
      }
      if (Date.now() - started >= 2000 && !b.classList.contains("yttl-floating")) {
        b.classList.add("yttl-floating");  // YouTube moved its title: float at the top right
        document.body.append(b);
      }
      if (Date.now() - started < 15000) setTimeout(attempt, 150);
    })();
    return b;
  }

  async function refresh() {
    const id = videoId();
    if (id === current) return;
    current = id;
    documentCache = null;
    closePanel();
    if (!id) { if (theButton) theButton.remove(); return; }
    placeButton();
    setState("idle", "Summarize", "Summarize this video with yttl");
    try {
      const found = await send({type: "lookup", id});
      if (current !== id) return;
      if (found.in_library) setState("ready", "Summary", "Open the summary from your yttl library");
    } catch (error) {
      if (current === id) setState("error", "yttl", error.message);
    }
  }

  async function onButton() {
    const b = button(), id = current;
    if (!b || !id) return;
    if (b.dataset.yttlState === "ready") return openPanel(id);
    if (b.dataset.yttlState === "running") return;
    setState("running", "Summarizing…");
    showPanel([el("p", {"class": "yttl-muted"}, "Starting…")]);
    try {
      const job = await send({type: "start", id});
      for (;;) {
        const state = await send({type: "job", id: job.id});
        if (current !== id) return;
        const video = (state.videos || [])[0];
        if (state.status === "queued" || state.status === "running") {
          const detail = video ? `${video.phase || video.status}${video.sections_total ? ` — ${video.sections_done}/${video.sections_total}` : ""}` : state.status;
          setState("running", "Summarizing…", detail);
          showPanel([el("p", {"class": "yttl-muted"}, `Summarizing: ${detail}`)]);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        if ((state.status === "ok" || state.status === "partial") && video && video.video_id) {
          setState("ready", "Summary");
          return openPanel(video.video_id);
        }
        throw new Error(plainError((video && video.error) || state.error || `the job ended ${state.status}`));
      }
    } catch (error) {
      if (current !== id) return;
      setState("error", "yttl", error.message);
      showPanel([el("p", {"class": "yttl-error", "role": "alert"}, error.message)]);
    }
  }

  function plainError(text) {
    if (/captions/i.test(text) && /whisper|model|transcrib/i.test(text)) {
      return "This video has no captions and no Whisper model is available: install one, or start yttl serve with -wp openai.";
    }
    if (/cannot reach|not answered|API key|provider/i.test(text)) return "The summarizer failed: " + text;
    return text;
  }

  // -- the panel -------------------------------------------------------------------------
  // Its host element (the test hook [data-yttl=panel]) is in the page; what it shows is in
  // a closed shadow root that only this script holds.

  const PANEL_CSS = `
    :host { display: block; }
    .yttl-body { box-sizing: border-box; font: 14px/1.5 Roboto, Arial, sans-serif; color: #0f0f0f; }
    h2 { font-size: 16px; margin: 4px 0 8px; }
    h3 { font-size: 14px; margin: 12px 0 4px; }
    p { margin: 2px 0 8px; }
    a[data-yttl-t] { font-weight: 600; color: #0a58ca; text-decoration: none; font-variant-numeric: tabular-nums; margin-right: .4em; }
    .yttl-error { color: #b3261e; }
    .yttl-muted { color: #606060; }
    form { display: flex; gap: 6px; margin: 8px 0; }
    input { flex: 1; padding: 6px 8px; border: 1px solid #ccc; border-radius: 6px; font: inherit; }
    button { padding: 6px 10px; border-radius: 6px; border: 1px solid #0a58ca; background: #0a58ca; color: #fff; font: inherit; cursor: pointer; }
    .yttl-close { float: right; background: none; color: #606060; border: none; font-size: 18px; line-height: 1; padding: 0 4px; }
    .yttl-slide { margin: 4px 0 10px; }
    .yttl-slide-image { max-width: 100%; height: auto; border-radius: 6px; border: 1px solid #ddd; }
    .yttl-slide figcaption { font-size: 12px; white-space: pre-line; }
    .yttl-chat-q { font-weight: 600; margin: 10px 0 2px; }
    [data-yttl=chat-answer] { background: rgba(10, 88, 202, .06); border-radius: 8px; padding: 4px 8px; }
    @media (prefers-color-scheme: dark) { .yttl-body { color: #f1f1f1; } a[data-yttl-t] { color: #3ea6ff; } }`;
  let panelHost = null, panelRoot = null;

  function closePanel() {
    if (panelHost) panelHost.remove();
    panelHost = panelRoot = null;
  }

  function makePanel() {
    const host = el("section", {"data-yttl": "panel", "aria-label": "yttl summary"});
    const root = host.attachShadow({mode: "closed"});
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(PANEL_CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (error) {
      root.append(el("style", {}, PANEL_CSS));
    }
    root.addEventListener("click", (event) => {  // a timestamp seeks the page's video
      const link = event.target.closest && event.target.closest("a[data-yttl-t]");
      if (!link) return;
      event.preventDefault();
      if (!event.isTrusted) return;
      const video = document.querySelector("video");
      if (!video) return;
      video.currentTime = Number(link.dataset.yttlT);
      const playing = video.play();
      if (playing && playing.catch) playing.catch(() => {});
    });
    panelHost = host;
    panelRoot = root;
  }

  function showPanel(children) {
    if (!panelHost || !panelHost.isConnected) {
      makePanel();
      const side = document.querySelector("#secondary-inner, #secondary");
      if (side) side.prepend(panelHost); else { panelHost.classList.add("yttl-floating"); document.body.append(panelHost); }
    }
    const close = el("button", {"type": "button", "class": "yttl-close", "aria-label": "Close"}, "×");
    close.addEventListener("click", (event) => { if (event.isTrusted) closePanel(); });
    panelRoot.replaceChildren(el("div", {"class": "yttl-body"}, close, ...children));
    return panelRoot;
  }

  // A section's slides: each image a link that seeks to the slide's start; the image comes
  // through the extension's background (it holds the token), the text is shown as text.
  function slidesOf(doc, id, section, last) {
    const shown = [];
    (doc.slides || []).forEach((slide, number) => {
      if (slide.start < section.start || (slide.start >= section.end && !last)) return;
      const image = el("img", {"alt": `Slide at ${clock(slide.start)}`, "class": "yttl-slide-image"});
      send({type: "slide", id, number}).then((src) => { image.src = src; }, () => { image.alt += " (not found)"; });
      const link = el("a", {"href": `#t=${Math.floor(slide.start)}`, "data-yttl-t": String(Math.floor(slide.start)),
                            "data-yttl": "slide"}, image);
      shown.push(el("figure", {"class": "yttl-slide"}, link, slide.text ? el("figcaption", {"class": "yttl-muted"}, slide.text) : ""));
    });
    return shown;
  }

  async function openPanel(id) {
    try {
      documentCache = documentCache && documentCache.video.id === id ? documentCache : await send({type: "video", id});
    } catch (error) {
      showPanel([el("p", {"class": "yttl-error", "role": "alert"}, error.message)]);
      return;
    }
    const doc = documentCache, parts = [el("h2", {}, doc.video.title)];
    if (doc.summary) parts.push(el("p", {}, doc.summary));
    for (const hour of doc.hours || []) {
      if ((doc.hours || []).length > 1) {
        parts.push(el("h3", {}, stamp(hour.start), `Hour ${hour.index + 1}`));
        if (hour.summary && hour.sections.length > 1) parts.push(el("p", {"class": "yttl-muted"}, hour.summary));
      }
      for (const section of hour.sections) {
        const text = section.status === "ok" ? section.summary : section.status === "empty" ? "No speech." : "Not summarized.";
        parts.push(el("p", {}, stamp(section.start), section.title ? section.title + ": " : "", text));
        parts.push(...slidesOf(doc, id, section, hour === doc.hours[doc.hours.length - 1] &&
          section === hour.sections[hour.sections.length - 1]));
      }
    }
    parts.push(await chatBox(id));
    showPanel(parts);
  }

  // -- chat: a thread over this video, kept by yttl serve; the background worker streams
  // each answer here by a port, piece by piece (it keeps the token). The box lives in the
  // panel's closed shadow root, and only a trusted (user) submit sends a question.

  function answerView(answer, id, reply) {
    answer.replaceChildren(el("p", {"class": "yttl-chat-text"}, reply.answer),
      el("p", {}, ...(reply.citations || []).filter((c) => c.video_id === id).map((c) => stamp(c.start))));
    answer.dataset.state = "done";
  }

  async function chatBox(id) {
    const box = el("div", {"class": "yttl-chat"});
    const log = el("div", {"class": "yttl-chat-log", "aria-live": "polite"});
    const input = el("input", {"type": "text", "placeholder": "Ask this video…", "aria-label": "Question",
                               "data-yttl": "chat-input"});
    const sendButton = el("button", {"type": "submit", "data-yttl": "chat-send"}, "Send");
    const form = el("form", {}, input, sendButton);
    let thread = null;
    try {
      const threads = await send({type: "threads", videoId: id});
      const latest = threads.find((t) => t.video_ids.length === 1);
      if (latest) {
        thread = latest.id;
        const kept = await send({type: "thread", id: thread});
        for (const m of kept.messages) {
          if (m.role === "user") log.append(el("p", {"class": "yttl-chat-q"}, m.content));
          else {
            const answer = el("div", {"data-yttl": "chat-answer"});
            answerView(answer, id, {answer: m.content, citations: m.citations});
            log.append(answer);
          }
        }
      }
    } catch (error) { /* no earlier thread: the first question starts one */ }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!event.isTrusted || sendButton.disabled || !input.value.trim()) return;
      const question = input.value.trim();
      input.value = "";
      sendButton.disabled = true;
      const text = el("p", {"class": "yttl-chat-text"});
      const answer = el("div", {"data-yttl": "chat-answer", "data-state": "streaming"}, text);
      log.append(el("p", {"class": "yttl-chat-q"}, question), answer);
      const port = api.runtime.connect({name: "yttl-chat"});
      const end = () => { sendButton.disabled = false; port.disconnect(); };
      port.onMessage.addListener((message) => {
        if (message.type === "thread") thread = message.id;
        else if (message.type === "token") text.textContent += message.text;
        else if (message.type === "restart") text.textContent = "";
        else if (message.type === "done") { answerView(answer, id, message.answer); end(); }
        else if (message.type === "error") {
          answer.removeAttribute("data-yttl");
          answer.dataset.state = "error";
          answer.append(el("p", {"class": "yttl-error", "role": "alert"}, message.error));
          end();
        }
      });
      port.postMessage({type: "ask", question, videoId: id, thread});
    });
    box.append(log, form);
    return box;
  }

  api.runtime.onMessage.addListener((message) => {
    if (message.type === "toolbar") onButton();
    if (message.type === "notice") showPanel([el("p", {}, message.text)]);
  });

  document.addEventListener("yt-navigate-finish", refresh);
  window.addEventListener("popstate", refresh);
  setInterval(refresh, 700);  // any other way the address changes
  refresh();
})();
