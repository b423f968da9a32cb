"use strict";
const api = globalThis.browser ?? globalThis.chrome;
const status = document.getElementById("status");

function say(text, good) { status.textContent = text; status.className = good ? "good" : "bad"; }

function send(message) {
  return new Promise((resolve, reject) => api.runtime.sendMessage(message, (answer) => {
    if (!answer) return reject(new Error("no answer from the extension"));
    answer.ok ? resolve(answer.value) : reject(new Error(answer.error));
  }));
}

const slides = document.getElementById("slides");
api.storage.local.get(["server", "token", "slides"]).then((stored) => {
  if (stored.server) document.getElementById("server").value = stored.server;
  if (stored.token) document.getElementById("token").value = stored.token;
  slides.checked = Boolean(stored.slides);
});
slides.addEventListener("change", async () => {  // every new job of the button asks for slides
  await api.storage.local.set({slides: slides.checked});
  say(slides.checked ? "New summaries will find and read the slides." : "New summaries skip the slides.", true);
});

document.getElementById("pair").addEventListener("submit", async (event) => {
  event.preventDefault();
  const server = document.getElementById("server").value.trim().replace(/\/+$/, "");
  const token = document.getElementById("token").value.trim();
  try {
    const result = await send({type: "save", server, token});
    say(`Paired: the library holds ${result.videos} video(s).`, true);
  } catch (error) {
    say(error.message, false);
  }
});

document.getElementById("find").addEventListener("click", async () => {
  try {
    const found = await send({type: "findServer"});
    document.getElementById("server").value = found.server;
    document.getElementById("token").value = found.token;
    say(`Found yttl serve at ${found.server}.`, true);
  } catch (error) {
    say(error.message, false);
  }
});
