// tc3d serve, camera and teach modes (uses $, el, showError and info from page.js).
// Camera: frames scaled to the model's short side go to WS /api/live as JPEG messages; each
// decision that comes back updates the label, the rolling timeline, latency and drops.
// Teach: clips (recorded from the camera or chosen files) go to POST /api/teach; Train starts a
// run on the server, which goes on whether or not this page stays open (its id is remembered).
"use strict";

const SEND_FPS = 30; // at most this many frames a second go to the server
const TIMELINE = 60; // decisions kept on the rolling timeline
const RECORD_MS = 2000;
const live = {
  ws: null, stream: null, running: false, started: 0, first: null, latencies: [],
  decisions: 0, dropped: 0, skipped: 0, sent: 0, inflight: 0, last: null, recent: [], model: "",
  sentAt: [], roundTrips: [], // when each frame left (by its number on this socket); send to shown
};
window.tc3dLive = live; // what the page measured, for tests and benchmarks
const canvas = document.createElement("canvas");
const colours = new Map();

function colourOf(label) {
  if (!colours.has(label)) {
    const i = colours.size;
    colours.set(label, `hsl(${Math.round((i * 137.508 + 210) % 360)}, 65%, ${i % 2 ? 40 : 55}%)`);
  }
  return colours.get(label);
}

function modelInfo(name) {
  return info.models.find((m) => m.name === name) || info.models[0] || { short_side: 128 };
}

function connect(name) {
  if (live.ws) { live.ws.onclose = null; live.ws.onmessage = null; live.ws.close(1000); }
  live.model = name || $("model").value || modelInfo().name || "";
  $("live-model").textContent = live.model;
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}` +
    `/api/live?model=${encodeURIComponent(live.model)}`;
  const ws = new WebSocket(url);
  live.ws = ws;
  live.sentOnSocket = 0;
  ws.onmessage = (e) => onDecision(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (live.ws === ws && live.running && e.code !== 1000) {
      showError(`the live stream was closed (${e.code}${e.reason ? ": " + e.reason : ""})`);
    }
  };
}

function sendFrame() {
  const view = $("camera-view");
  const ws = live.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !view.videoWidth) return;
  if (ws.bufferedAmount > 1 << 20 || live.inflight > 1) { live.skipped++; return; } // behind
  const side = modelInfo(live.model).short_side || 128;
  const scale = Math.min(1, side / Math.min(view.videoWidth, view.videoHeight));
  canvas.width = Math.round(view.videoWidth * scale);
  canvas.height = Math.round(view.videoHeight * scale);
  canvas.getContext("2d").drawImage(view, 0, 0, canvas.width, canvas.height);
  live.inflight++;
  canvas.toBlob((blob) => {
    live.inflight--;
    if (blob && ws.readyState === WebSocket.OPEN && ws === live.ws) {
      live.sentAt[live.sentOnSocket++ % 256] = performance.now();
      ws.send(blob);
      live.sent++;
    }
  }, "image/jpeg", 0.85);
}

function frameLoop() {
  const view = $("camera-view");
  let lastSent = 0;
  const tick = (now) => {
    if (!live.running) return;
    if (now - lastSent >= 1000 / SEND_FPS - 2) { lastSent = now; sendFrame(); }
    if (view.requestVideoFrameCallback) view.requestVideoFrameCallback(tick);
    else setTimeout(() => tick(performance.now()), 1000 / SEND_FPS);
  };
  tick(performance.now());
}

function p95(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(0.95 * s.length))] : 0;
}

function onDecision(d) {
  if (d.error) { showError(`live: ${d.error}`); return; }
  if (live.first === null) live.first = (performance.now() - live.started) / 1000;
  live.decisions++;
  live.last = d;
  live.dropped = d.dropped;
  live.latencies.push(d.latency_ms);
  if (live.latencies.length > 5000) live.latencies.shift();
  if (live.sentOnSocket - d.frame <= 256) {
    live.roundTrips.push(performance.now() - live.sentAt[d.frame % 256]);
    if (live.roundTrips.length > 5000) live.roundTrips.shift();
  }
  live.recent.push(d);
  if (live.recent.length > TIMELINE) live.recent.shift();
  $("live-label").textContent = d.label;
  $("live-prob").textContent = `${(100 * d.prob).toFixed(0)}%`;
  $("live-latency").textContent =
    `${Math.round(d.latency_ms)} ms (p95 ${Math.round(p95(live.latencies.slice(-200)))} ms)`;
  $("live-dropped").textContent = String(d.dropped + live.skipped);
  $("live-decisions").textContent = String(live.decisions);
  $("live-timeline").replaceChildren(...live.recent.map((x) => el("div", {
    className: "seg", title: `${x.label} ${(100 * x.prob).toFixed(0)}%`,
    style: { background: colourOf(x.label) },
  })));
  const shown = [...new Set(live.recent.map((x) => x.label))];
  $("live-legend").replaceChildren(...shown.map((label) => el("li", {}, [
    el("i", { style: { background: colourOf(label) } }), document.createTextNode(label),
  ])));
}

async function startCamera() {
  $("error").hidden = true;
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    return showError(`no camera: ${e.message || e.name}`);
  }
  Object.assign(live, { running: true, started: performance.now(), first: null, latencies: [],
    decisions: 0, skipped: 0, sent: 0, recent: [], roundTrips: [] });
  const view = $("camera-view");
  view.srcObject = live.stream;
  $("live").hidden = false;
  $("camera").textContent = "Stop camera";
  $("teach-record").disabled = false;
  await view.play().catch(() => {});
  connect();
  frameLoop();
}

function stopCamera() {
  live.running = false;
  if (live.ws) { live.ws.onclose = live.ws.onmessage = null; live.ws.close(1000); live.ws = null; }
  if (live.stream) for (const t of live.stream.getTracks()) t.stop();
  live.stream = null;
  $("camera-view").srcObject = null;
  $("camera").textContent = "Start camera";
  $("teach-record").disabled = true;
}

// --- teach mode

function teachStatus(text) { $("teach-status").textContent = text; }

async function refreshTeach() {
  try {
    const r = await (await fetch("/api/teach")).json();
    const classes = Object.entries(r.classes || {});
    $("teach-classes").replaceChildren(...classes.map(([label, n]) =>
      el("li", { text: `${label}: ${n} clip${n === 1 ? "" : "s"}` })));
    $("teach-train").disabled = classes.length < 2 || Boolean(r.running);
    if (r.running && !localStorage.getItem("tc3d-teach-job") && !following.has(r.running)) {
      follow(r.running); // started elsewhere (another tab, or a tab since closed)
    }
  } catch (e) { /* the server is gone: page.js says so */ }
}

async function addClip(blob, filename) {
  const label = $("teach-label").value.trim();
  if (!label) return showError("name the class first");
  const form = new FormData();
  form.append("label", label);
  form.append("video", blob, filename);
  teachStatus(`adding ${filename} to "${label}"...`);
  const r = await fetch("/api/teach", { method: "POST", body: form });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok || body.error) return showError(`${filename}: ${body.error || r.status}`);
  teachStatus(`added a clip of "${body.label}" (${body.frames} frames)`);
  await refreshTeach();
}

function record() {
  if (!live.stream) return;
  const chunks = [];
  const rec = new MediaRecorder(live.stream, { mimeType: "video/webm" });
  rec.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  rec.onstop = () => {
    $("teach-record").disabled = !live.running;
    addClip(new Blob(chunks, { type: "video/webm" }), `camera-${Date.now()}.webm`);
  };
  $("teach-record").disabled = true;
  teachStatus("recording...");
  rec.start();
  setTimeout(() => rec.stop(), RECORD_MS);
}

async function train() {
  $("teach-train").disabled = true;
  const r = await fetch("/api/teach/train", { method: "POST", body: new FormData() });
  const body = await r.json().catch(() => ({ error: `HTTP ${r.status}` }));
  if (!r.ok || body.error) { $("teach-train").disabled = false; return showError(body.error); }
  localStorage.setItem("tc3d-teach-job", body.job);
  follow(body.job);
}

const following = new Set(); // runs this page follows or has followed

async function follow(job) {
  if (following.has(job)) return;
  following.add(job);
  const bar = $("teach-progress");
  bar.hidden = false;
  for (;;) {
    let s;
    try { s = await (await fetch(`/api/teach/${encodeURIComponent(job)}`)).json(); } catch (e) {
      s = { state: "running", progress: bar.value };
    }
    if (s.error && !s.state) { localStorage.removeItem("tc3d-teach-job"); return; }
    bar.value = s.progress || 0;
    if (s.state === "failed") {
      localStorage.removeItem("tc3d-teach-job");
      teachStatus("");
      return showError(`training failed: ${s.error}`);
    }
    if (s.state === "done") return taught(s.model);
    teachStatus(`training ${job}: ${Math.round(s.progress || 0)}%`);
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

async function taught(name) {
  localStorage.removeItem("tc3d-teach-job");
  try { info = await (await fetch("/api/info")).json(); } catch (e) { /* keep what we had */ }
  $("teach-progress").value = 100;
  teachStatus(`taught: ${name}. The live view now uses it.`);
  const select = $("model");
  if (![...select.options].some((o) => o.value === name)) {
    select.appendChild(el("option", { value: name, text: `${name} (taught here)` }));
  }
  select.value = name;
  $("model-row").hidden = false;
  const link = $("teach-download");
  link.href = `/api/models/${encodeURIComponent(name)}.tc3d`;
  link.download = `${name}.tc3d`;
  link.hidden = false;
  if (live.running) connect(name);
  else $("live-model").textContent = name;
  refreshTeach();
}

function setUpLive() {
  $("camera").addEventListener("click", () => (live.running ? stopCamera() : startCamera()));
  $("teach-record").addEventListener("click", record);
  $("teach-train").addEventListener("click", train);
  $("teach-files").addEventListener("change", async (e) => {
    for (const f of [...e.target.files]) await addClip(f, f.name);
    e.target.value = "";
  });
  $("model").addEventListener("change", () => { if (live.running) connect(); });
  refreshTeach();
  const job = localStorage.getItem("tc3d-teach-job");
  if (job) follow(job); // a run started before this page was (re)opened
}

setUpLive();
