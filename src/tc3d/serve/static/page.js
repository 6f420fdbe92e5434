// tc3d serve: choose or drop a video, POST it to /api/predict, show what comes back.
// Text from the server or the user's file name is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
let info = { models: [], examples: [], max_upload_mb: 500, top: 5 };
let pending = null; // AbortController of the analysis in flight
let previewUrl = null;

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "style") Object.assign(node.style, v); // CSSOM: allowed by the page's CSP
    else node[k] = v;
  }
  for (const c of children) node.appendChild(c);
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function palette(labels) {
  // Colours far apart for the labels of one timeline, most frequent first (golden-angle hues,
  // lightness alternating), so that neighbouring segments are easy to tell apart.
  const colours = new Map();
  labels.forEach((label, i) => {
    colours.set(label, `hsl(${Math.round((i * 137.508 + 210) % 360)}, 65%, ${i % 2 ? 40 : 55}%)`);
  });
  return colours;
}

function seconds(x) {
  return x < 10 ? `${x.toFixed(2)} s` : `${x.toFixed(1)} s`;
}

async function loadInfo() {
  try {
    const r = await fetch("/api/info");
    info = await r.json();
  } catch (e) {
    showError("cannot reach the tc3d server: is it still running?");
    return;
  }
  const select = $("model");
  for (const m of info.models) {
    const note = `${m.classes} classes, ${m.segments}x${m.frames} frames` +
      (m.anomaly ? ", anomaly model" : "");
    select.appendChild(el("option", { value: m.name, text: `${m.name} (${note})` }));
  }
  $("model-row").hidden = info.models.length < 2;
  $("limit").textContent = `any format FFmpeg reads, up to ${info.max_upload_mb} MB`;
  const box = $("examples");
  for (const ex of info.examples) {
    const b = el("button", { type: "button", className: "example", title: ex.description }, [
      el("img", { src: ex.poster, alt: "" }),
      el("span", {}, [
        document.createTextNode(ex.name),
        el("small", { text: `${ex.seconds.toFixed(1)} s` }),
      ]),
    ]);
    b.dataset.name = ex.name;
    b.addEventListener("click", () => runExample(ex.name));
    box.appendChild(b);
  }
  $("examples-row").hidden = info.examples.length === 0;
}

async function runExample(name) {
  try {
    const r = await fetch(`/examples/${encodeURIComponent(name)}`);
    if (!r.ok) throw new Error(`example ${name}: HTTP ${r.status}`);
    const blob = await r.blob();
    analyse(new File([blob], name, { type: blob.type }));
  } catch (e) {
    showError(String(e.message || e));
  }
}

async function analyse(file) {
  if (!file) return;
  if (pending) pending.abort();
  $("error").hidden = true;
  $("result").hidden = true; // the last result is about another file
  if (file.size === 0) return showError(`${file.name}: the file is empty`);
  if (file.size > info.max_upload_mb * 1048576) {
    return showError(`${file.name}: over the ${info.max_upload_mb} MB upload limit`);
  }
  const controller = new AbortController();
  pending = controller;
  const started = performance.now();
  const tick = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    $("status").textContent = `Analysing ${file.name}... ${s.toFixed(1)} s`;
  }, 100);
  $("status").textContent = `Analysing ${file.name}...`;
  const form = new FormData();
  form.append("video", file, file.name);
  form.append("model", $("model").value);
  form.append("cam", "1");
  try {
    const r = await fetch("/api/predict", { method: "POST", body: form, signal: controller.signal });
    let body;
    try {
      body = await r.json();
    } catch (e) {
      body = { error: `the server answered HTTP ${r.status}` };
    }
    if (!r.ok || body.error) throw new Error(body.error || `HTTP ${r.status}`);
    show(body, file, (performance.now() - started) / 1000);
    $("status").textContent = "";
  } catch (e) {
    if (e.name !== "AbortError") showError(String(e.message || e));
  } finally {
    clearInterval(tick);
    if (pending === controller) pending = null;
  }
}

function show(r, file, roundTrip) {
  $("result").hidden = false;
  $("video-name").textContent = r.video;
  const t = r.timing;
  $("timing").textContent =
    `${r.frames} frames (${seconds(r.duration)}, ${r.width}x${r.height}) with ${r.model}. ` +
    `Labels in ${seconds(t.labels_s)}: ${Math.round(r.fps)} frames/s through the whole ` +
    `pipeline (decode, sample, model). Full analysis ${seconds(r.seconds)}` +
    (t.queued_s > 0.05 ? `, after ${seconds(t.queued_s)} waiting for the model` : "") +
    `; ${seconds(roundTrip)} from upload to this page.`;

  const list = $("labels");
  list.replaceChildren();
  for (const { label, prob } of r.results[0].labels) {
    const bar = el("div", { className: "bar" }, [el("span", { style: { width: `${100 * prob}%` } })]);
    const row = el("div", { className: "row" }, [
      el("span", { className: "label", text: label }),
      el("span", { className: "prob", text: `${(100 * prob).toFixed(1)}%` }),
    ]);
    list.appendChild(el("li", {}, [row, bar]));
  }

  const preview = $("preview");
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  preview.hidden = true;
  preview.onloadeddata = () => { preview.hidden = false; };
  preview.onerror = () => { preview.hidden = true; }; // a format this browser cannot play
  preview.src = previewUrl;

  $("cam-box").hidden = !r.cam;
  if (r.cam) {
    $("cam").src = r.cam.gif;
    $("cam-note").textContent = r.cam.kind === "anomaly scorer"
      ? `Where the anomaly scorer saw lasting local change: ${r.cam.frames} frames over 2 s ` +
        "from its top score on, each cell coloured by its own score (red: anomalous)."
      : `Class activation map of "${r.cam.label}" over the ${r.cam.frames} frames the ` +
        "model read (red: where the evidence is).";
  }
  showTimeline(r);
  showAnomaly(r);
}

function showTimeline(r) {
  const windows = r.timeline || [];
  $("timeline-box").hidden = windows.length < 2;
  if (windows.length < 2) return;
  const bar = $("timeline");
  const legend = $("legend");
  bar.replaceChildren();
  legend.replaceChildren();
  const end = r.duration || windows[windows.length - 1].t;
  const seen = new Map();
  for (const w of windows) seen.set(w.label, (seen.get(w.label) || 0) + 1);
  const counts = [...seen].sort((a, b) => b[1] - a[1]);
  const colour = palette(counts.map(([label]) => label));
  windows.forEach((w, i) => {
    const from = i === 0 ? 0 : w.t;
    const to = i + 1 < windows.length ? windows[i + 1].t : end;
    const seg = el("div", {
      className: "seg",
      title: `${w.t.toFixed(2)} s: ${w.label} ${(100 * w.prob).toFixed(0)}%`,
      style: { flexGrow: String(Math.max(to - from, 1e-3)), background: colour.get(w.label) },
    });
    seg.dataset.label = w.label;
    bar.appendChild(seg);
  });
  for (const [label, n] of counts) {
    legend.appendChild(el("li", {}, [
      el("i", { style: { background: colour.get(label) } }),
      document.createTextNode(`${label} (${n})`),
    ]));
  }
  $("timeline-end").textContent = seconds(end);
  $("timeline-note").textContent = r.timeline_source === "anomaly scores"
    ? `${windows.length} points of the anomaly score below: Anomaly where it is above 0.5.`
    : `${windows.length} decisions of the streaming path, each from the newest clips up to ` +
      "that moment.";
}

function showAnomaly(r) {
  const svg = $("anomaly");
  $("anomaly-box").hidden = !r.anomaly;
  if (!r.anomaly) return;
  const scores = r.anomaly.scores;
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const n = Math.max(scores.length - 1, 1);
  const pts = scores.map((s, i) => `${(600 * i / n).toFixed(1)},${(116 - 112 * s).toFixed(1)}`);
  const half = document.createElementNS(ns, "line");
  for (const [k, v] of Object.entries({ x1: 0, x2: 600, y1: 60, y2: 60, stroke: "#c3c9d6",
    "stroke-dasharray": "4 4", "vector-effect": "non-scaling-stroke" })) half.setAttribute(k, v);
  const line = document.createElementNS(ns, "polyline");
  for (const [k, v] of Object.entries({ points: pts.join(" "), fill: "none", stroke: "#b42318",
    "stroke-width": 2, "vector-effect": "non-scaling-stroke" })) line.setAttribute(k, v);
  svg.append(half, line);
  const fps = r.anomaly.fps || 25;
  const peak = scores.reduce((best, s, i) => (s > scores[best] ? i : best), 0);
  $("anomaly-end").textContent = seconds(scores.length / fps);
  $("anomaly-note").textContent =
    `Highest ${scores[peak].toFixed(2)} at ${seconds(peak / fps)} ` +
    `(frame ${peak + 1} of ${scores.length}); dashed line: 0.5.`;
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => {
    analyse(e.target.files[0]);
    e.target.value = ""; // choosing the same file again analyses it again
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) analyse(e.dataTransfer.files[0]);
  });
  loadInfo();
}

setUp();
