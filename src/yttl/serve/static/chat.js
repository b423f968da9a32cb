// yttl serve: chat with a video or the whole library. The question goes to the chat API
// with fetch; its answer comes back as server-sent events read from the response's
// stream, and grows on the page as the model writes it. Citations and sources become
// timestamp links (a[data-t][data-yttl-t]) that app.js makes seek the player.
(function () {
  "use strict";

  function headers() {
    // the session's CSRF token, which every unsafe request with the cookie must carry, is
    // added by app.js to the pages' same-origin fetch calls (it keeps the token in this
    // origin's storage; docs/security.md); the browser adds the same-origin Origin itself
    return {"Content-Type": "application/json", "Accept": "text/event-stream"};
  }

  function clock(seconds) {
    var s = Math.floor(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + ss : m + ":" + ss;
  }

  function stamp(c) {
    var a = document.createElement("a");
    var t = String(Math.floor(c.start));
    a.className = "stamp";
    a.href = c.video_id ? "/v/" + encodeURIComponent(c.video_id) + "?t=" + t : c.url;
    a.dataset.t = t;
    a.dataset.yttlT = t;
    if (c.video_id) a.dataset.video = c.video_id;
    a.textContent = clock(c.start);
    return a;
  }

  function links(list) {
    var ul = document.createElement("ul");
    ul.className = "citations";
    list.forEach(function (c) {
      var li = document.createElement("li");
      li.appendChild(stamp(c));
      ul.appendChild(li);
    });
    return ul;
  }

  function finish(answer, data) {
    answer.querySelector(".chat-text").textContent = data.answer;
    if (data.citations && data.citations.length) answer.appendChild(links(data.citations));
    if (data.sources && data.sources.length) {
      var details = document.createElement("details");
      details.className = "chat-sources";
      var summary = document.createElement("summary");
      summary.textContent = "Drawn from";
      details.appendChild(summary);
      details.appendChild(links(data.sources));
      answer.appendChild(details);
    }
    answer.dataset.state = "done";
    answer.dataset.messageId = data.message_id;
  }

  function fail(answer, message) {
    answer.removeAttribute("data-yttl");  // not an answer: nothing of it is kept
    answer.dataset.state = "error";
    var p = document.createElement("p");
    p.className = "problem";
    p.setAttribute("role", "alert");
    p.dataset.yttl = "chat-error";
    p.textContent = "The answer failed: " + message + " Ask again to retry.";
    answer.appendChild(p);
  }

  // Server-sent events out of a fetch response: "event:" and "data:" lines, a blank
  // line between events; comments (": ping") skipped.
  async function events(response, on) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    for (;;) {
      var step = await reader.read();
      if (step.done) return;
      buffer = (buffer + decoder.decode(step.value, {stream: true})).replace(/\r\n?/g, "\n");
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, end), kind = "message", data = [];
        buffer = buffer.slice(end + 2);
        block.split("\n").forEach(function (line) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        });
        if (data.length && on(kind, JSON.parse(data.join("\n")))) {
          reader.cancel();
          return;
        }
      }
    }
  }

  async function thread(box) {
    if (box.dataset.thread) return box.dataset.thread;
    var body = box.dataset.videoId ? {video_ids: [box.dataset.videoId]} : {all: true};
    var response = await fetch("/api/v1/chats", {method: "POST", headers: headers(),
      credentials: "same-origin", body: JSON.stringify(body)});
    var data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    box.dataset.thread = data.id;
    history.replaceState(null, "", "?chat=" + encodeURIComponent(data.id) + location.hash);
    return data.id;
  }

  async function send(box, question) {
    var log = box.querySelector(".chat-log");
    var q = document.createElement("li");
    q.className = "chat-q";
    q.textContent = question;
    var answer = document.createElement("li");
    answer.className = "chat-a";
    answer.dataset.yttl = "chat-answer";
    answer.dataset.state = "streaming";
    var text = document.createElement("p");
    text.className = "chat-text";
    answer.appendChild(text);
    log.appendChild(q);
    log.appendChild(answer);
    try {
      var id = await thread(box);
      var response = await fetch("/api/v1/chats/" + encodeURIComponent(id) + "/messages", {
        method: "POST", headers: headers(), credentials: "same-origin",
        body: JSON.stringify({content: question})});
      if (!response.ok) {
        var problem = await response.json().catch(function () { return {}; });
        throw new Error(problem.error || response.statusText);
      }
      var ended = false;
      await events(response, function (kind, data) {
        if (kind === "token") text.textContent += data.text;
        else if (kind === "restart") text.textContent = "";
        else if (kind === "done") { finish(answer, data); ended = true; }
        else if (kind === "error") { fail(answer, data.error); ended = true; }
        return ended;
      });
      if (!ended) fail(answer, "the connection ended before the answer did.");
    } catch (error) {
      fail(answer, error.message || String(error));
    }
  }

  function bind(box) {
    var form = box.querySelector(".chat-form");
    var input = box.querySelector('[data-yttl="chat-input"]');
    var button = box.querySelector('[data-yttl="chat-send"]');
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      var question = input.value.trim();
      if (!question || button.disabled) return;
      input.value = "";
      button.disabled = true;
      try { await send(box, question); } finally { button.disabled = false; input.focus(); }
    });
  }

  function start() { document.querySelectorAll("[data-yttl-chat]").forEach(bind); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
