// yttl serve: timestamps seek the page's player; jobs show their progress live.
(function () {
  "use strict";

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

  document.addEventListener("DOMContentLoaded", function () { startAt(); followAll(); });
  document.addEventListener("htmx:afterSettle", followAll);
})();
