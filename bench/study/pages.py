"""The rater page: plain HTML + JS, no external resource (works offline, no CDN).

All text that comes from the data (prompts, questions) is inserted with `textContent`, never as
HTML, and the few server-side values are escaped, so a `<script>` in a prompt shows as text. The
script is served from /static/rater.js so the page's Content-Security-Policy can forbid inline scripts.
"""

from __future__ import annotations

import html

RATER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; background: #f6f8fa; color: #1f2328; }
  header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; justify-content: space-between; align-items: center; }
  header h1 { font-size: 18px; margin: 0; }
  #progress-text { font-size: 14px; }
  progress { width: 220px; height: 12px; margin-left: 8px; vertical-align: middle; }
  main { padding: 16px 24px; max-width: 1400px; }
  .prompt { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; font-size: 16px; margin-bottom: 12px; }
  .prompt .label { color: #57606a; font-size: 13px; margin-right: 6px; }
  .clips { display: flex; gap: 14px; flex-wrap: wrap; align-items: flex-start; }
  figure { margin: 0; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
  figure video { width: 300px; height: auto; display: block; background: #000; border-radius: 4px; image-rendering: pixelated; }
  figure img { width: 180px; height: auto; display: block; background: #eee; border-radius: 4px; }
  figure.edit { border-color: #54aeff; }
  figcaption { text-align: center; font-weight: 600; margin-top: 6px; }
  .questions { margin-top: 16px; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; }
  .q { padding: 8px 0; border-bottom: 1px solid #eaeef2; }
  .q:last-child { border-bottom: 0; }
  .q .text { font-weight: 600; margin-bottom: 6px; }
  .q label { margin-right: 18px; cursor: pointer; }
  .actions { margin-top: 14px; }
  button { font-size: 15px; padding: 7px 18px; border-radius: 6px; border: 1px solid #1f883d; background: #1f883d; color: #fff; cursor: pointer; }
  button:disabled { background: #94d3a2; border-color: #94d3a2; cursor: default; }
  .msg { margin-top: 10px; color: #57606a; font-size: 14px; }
  .done { background: #dafbe1; border: 1px solid #4ac26b; border-radius: 6px; padding: 16px; font-size: 17px; }
  .error { color: #cf222e; }
</style>
</head>
<body data-token="__TOKEN__">
<header>
  <h1 id="title">__TITLE__</h1>
  <div><span id="progress-text">loading…</span> <progress id="progress" max="1" value="0"></progress></div>
</header>
<main>
  <div id="task">
    <div class="prompt"><span class="label" id="prompt-label">Instruction:</span><span id="prompt"></span></div>
    <div class="clips">
      <figure><video id="v-source" muted playsinline preload="auto"></video><figcaption>Source</figcaption></figure>
      <figure id="ref-fig" hidden><img id="reference" alt="reference image"><figcaption>Reference image</figcaption></figure>
      <figure class="edit"><video id="v-left" muted playsinline preload="auto"></video><figcaption>Left edit</figcaption></figure>
      <figure class="edit"><video id="v-right" muted playsinline preload="auto"></video><figcaption>Right edit</figcaption></figure>
    </div>
    <form class="questions" id="questions"></form>
    <div class="actions"><button id="submit" type="button" disabled>Submit and next</button>
      <span class="msg">You can stop at any time: your answers are saved, and this link brings you back where you left off.</span></div>
    <div class="msg" id="status"></div>
  </div>
  <div id="finished" class="done" hidden>All pairs are done — thank you! You can close this page.</div>
</main>
<script src="/static/rater.js"></script>
</body>
</html>
"""


RATER_JS = r""""use strict";
const TOKEN = document.body.dataset.token;
const API = "/api/r/" + encodeURIComponent(TOKEN);
const CHOICES = [["left", "Left"], ["right", "Right"], ["tie", "Not sure"]];
const videos = ["v-source", "v-left", "v-right"].map(id => document.getElementById(id));
let current = null;
let questions = {};

function setStatus(text, isError) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = "msg" + (isError ? " error" : "");
}

function showProgress(state) {
  document.getElementById("progress-text").textContent = state.done + " / " + state.total + " pairs done";
  const bar = document.getElementById("progress");
  bar.max = Math.max(state.total, 1);
  bar.value = state.done;
}

// The source drives the clock; the edits follow it, so all three loop in step.
function syncVideos() {
  const master = videos[0];
  for (const v of videos.slice(1)) {
    if (v.readyState >= 2 && Math.abs(v.currentTime - master.currentTime) > 0.12) v.currentTime = master.currentTime;
    if (v.paused && !master.paused) v.play().catch(() => {});
  }
}
setInterval(syncVideos, 150);

function playAll() {
  for (const v of videos) { v.muted = true; v.loop = true; v.currentTime = 0; v.play().catch(() => {}); }
}

function renderQuestions() {
  const form = document.getElementById("questions");
  form.replaceChildren();
  for (const [qid, text] of Object.entries(questions)) {
    const div = document.createElement("div");
    div.className = "q";
    const t = document.createElement("div");
    t.className = "text";
    t.textContent = text;
    div.appendChild(t);
    for (const [value, label] of CHOICES) {
      const lab = document.createElement("label");
      const input = document.createElement("input");
      input.type = "radio"; input.name = qid; input.value = value; input.id = "q-" + qid + "-" + value;
      input.addEventListener("change", updateSubmit);
      lab.appendChild(input);
      lab.appendChild(document.createTextNode(" " + label));
      div.appendChild(lab);
    }
    form.appendChild(div);
  }
}

function answers() {
  const out = {};
  for (const qid of Object.keys(questions)) {
    const sel = document.querySelector('input[name="' + CSS.escape(qid) + '"]:checked');
    if (sel) out[qid] = sel.value;
  }
  return out;
}

function updateSubmit() {
  document.getElementById("submit").disabled = Object.keys(answers()).length !== Object.keys(questions).length;
}

function show(state) {
  showProgress(state);
  current = state.next;
  if (!current) {
    document.getElementById("task").hidden = true;
    document.getElementById("finished").hidden = false;
    for (const v of videos) v.pause();
    return;
  }
  document.getElementById("prompt-label").textContent = current.prompt ? "Instruction:" : "Reference-guided edit:";
  document.getElementById("prompt").textContent = current.prompt || "(no text instruction: compare with the reference image)";
  const fig = document.getElementById("ref-fig");
  if (current.reference_url) { document.getElementById("reference").src = current.reference_url; fig.hidden = false; }
  else { fig.hidden = true; }
  videos[0].src = current.source_url; videos[1].src = current.left_url; videos[2].src = current.right_url;
  renderQuestions();
  updateSubmit();
  playAll();
  document.body.dataset.pair = current.pair_id;
  setStatus("");
}

async function load() {
  const r = await fetch(API + "/state");
  if (!r.ok) { setStatus("This link is not valid (" + r.status + ").", true); return; }
  const state = await r.json();
  questions = state.questions;
  document.getElementById("title").textContent = "Study " + state.study;
  show(state);
}

document.getElementById("submit").addEventListener("click", async () => {
  const btn = document.getElementById("submit");
  btn.disabled = true;
  setStatus("saving…");
  try {
    const r = await fetch(API + "/vote", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({pair_id: current.pair_id, answers: answers()}),
    });
    if (!r.ok) { setStatus("Could not save (" + r.status + "): please try again.", true); updateSubmit(); return; }
    show(await r.json());
  } catch (e) {
    setStatus("Could not reach the study server: your answer was not saved; please try again.", true);
    updateSubmit();
  }
});

load();
"""


def rater_page(title: str, token: str) -> str:
    """The page for one rater; `token` has been validated by the server (URL-safe characters only)."""
    return RATER_PAGE.replace("__TITLE__", html.escape(title)).replace("__TOKEN__", html.escape(token, quote=True))


def message_page(title: str, text: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body style='font-family:sans-serif;padding:24px'><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p></body></html>")
