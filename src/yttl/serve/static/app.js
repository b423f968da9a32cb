// yttl serve: timestamps seek the page's player; jobs show their progress live; every
// request that changes something carries the session's CSRF token (docs/security.md).
(function () {
  "use strict";

  // The session's CSRF token comes once, in the fragment of the login's redirect, and is
  // kept in this origin's storage: no other port reads it, and the pages never show it
  // (a program replaying the cookie would read it there).
  var KEY = "yttl-csrf";
  var given = location.hash.match(/^#yttl-csrf=([A-Za-z0-9_-]+)$/);
  function store(value) {
    try { if (value) localStorage.setItem(KEY, value); else localStorage.removeItem(KEY); } catch (e) {}
  }
  if (given) {
    store(given[1]);
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  function csrf() {
    try { return localStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }
  var UNSAFE = /^(POST|PUT|PATCH|DELETE)$/i;

  function sameOrigin(url) {
    try { return new URL(url, location.href).origin === location.origin; } catch (e) { return false; }
  }

  // htmx requests: a header
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf() && UNSAFE.test(event.detail.verb || "")) event.detail.headers["X-YTTL-CSRF"] = csrf();
  });

  // the pages' own fetch calls (a chat's stream, say): the same header, to this server only
  if (window.fetch) {
    var plainFetch = window.fetch.bind(window);
    window.fetch = function (input, init) {
      var method = (init && init.method) || (input && input.method) || "GET";
      var url = typeof input === "string" ? input : (input && input.url) || String(input);
      if (UNSAFE.test(method) && sameOrigin(url) && csrf()) {
        var headers = new Headers((init && init.headers) || (input && input.headers) || undefined);
        headers.set("X-YTTL-CSRF", csrf());
        init = Object.assign({}, init || {}, {headers: headers});
      }
      return plainFetch(input, init);
    };
  }

  // a form that posts to this server gets the token in its hidden field as it is sent
  function arm(form) {
    if (!form || (form.method || "").toLowerCase() !== "post" || !sameOrigin(form.action)) return;
    var field = form.querySelector('input[name="_csrf"]');
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden"; field.name = "_csrf";
      form.prepend(field);
    }
    field.value = csrf();
  }
  document.addEventListener("submit", function (event) { arm(event.target); }, true);
  function armForms(root) {
    if (root.querySelectorAll) root.querySelectorAll('form[method="post" i]').forEach(arm);
  }
  // signed out (the login form shows): the token is over
  if (document.querySelector('form[action="/login"]')) store("");

  function player() { return document.getElementById("player"); }

  function seek(seconds) {
    var p = player();
    if (!p) return false;
    if (p.tagName === "VIDEO") {
      p.currentTime = seconds;
      var playing = p.play();
      if (playing && playing.catch) playing.catch(function () {});
    } else if (p.tagName === "IFRAME" && p.contentWindow) {
      p.contentWindow.postMessage(JSON.stringify({event: "command", func: "seekTo", args: [seconds, true]}), "*");
      p.contentWindow.postMessage(JSON.stringify({event: "command", func: "playVideo", args: []}), "*");
    }
    mark(seconds);
    p.scrollIntoView({behavior: "smooth", block: "nearest"});
    return true;
  }

  function mark(seconds) {
    var best = null;
    document.querySelectorAll(".section .stamp[data-t]").forEach(function (a) {
      if (Number(a.dataset.t) <= seconds) best = a.closest(".section");
    });
    document.querySelectorAll(".section.current").forEach(function (s) { s.classList.remove("current"); });
    if (best) best.classList.add("current");
  }

  function currentVideo() {
    var m = location.pathname.match(/^\/v\/([^/]+)/);
    return m ? decodeURIComponent(m[1]) : null;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-t]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var other = link.dataset.video && link.dataset.video !== currentVideo();
    if (other) return;  // a citation of another video: follow the link to its page
    if (seek(Number(link.dataset.t))) event.preventDefault();
  });

  function startAt() {
    var q = new URLSearchParams(location.search).get("t");
    var h = location.hash.match(/^#t=(\d+)/);
    var t = q !== null ? Number(q) : h ? Number(h[1]) : null;
    if (t === null || isNaN(t) || !player()) return;
    var p = player();
    if (p.tagName === "VIDEO") {
      if (p.readyState >= 1) seek(t); else p.addEventListener("loadedmetadata", function () { seek(t); }, {once: true});
    } else {
      p.addEventListener("load", function () { setTimeout(function () { seek(t); }, 500); }, {once: true});
      mark(t);
    }
  }

  function follow(job) {
    var id = job.dataset.job;
    if (!window.EventSource || job.dataset.following) return;
    job.dataset.following = "1";
    var source = new EventSource("/api/v1/jobs/" + encodeURIComponent(id) + "/events");
    function show(state) {
      if (state.status) {
        job.dataset.status = state.status;
        job.querySelector(".job-status").textContent = state.status;
      }
    }
    source.addEventListener("progress", function (e) {
      var data = JSON.parse(e.data);
      show(data);
      if (data.phase) {
        job.querySelector(".job-status").textContent = "running: " + data.title + " — " + data.phase +
          (data.sections_total ? " " + data.sections_done + "/" + data.sections_total : "");
      }
    });
    source.addEventListener("video", function (e) { show({}); });
    source.addEventListener("done", function (e) {
      source.close();
      show(JSON.parse(e.data));
      if (window.htmx) htmx.ajax("GET", "/jobs", {target: "#jobs", select: "#jobs", swap: "outerHTML"});
    });
    source.onerror = function () { source.close(); delete job.dataset.following; };
  }

  function followAll() {
    document.querySelectorAll('.job[data-status="queued"], .job[data-status="running"]').forEach(follow);
  }

  document.addEventListener("DOMContentLoaded", function () { armForms(document); startAt(); followAll(); });
  document.addEventListener("htmx:afterSettle", function (event) { armForms(event.target || document); followAll(); });
})();
