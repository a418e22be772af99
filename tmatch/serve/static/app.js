// tmatch web page: plain JavaScript, no build step, nothing loaded from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const GREEN = "rgb(40, 220, 90)";
// templates: every chosen template ({blob, name}); template: the first (the live camera uses it)
const state = { template: null, templates: [], image: null, method: null, live: null, urls: [] };

// ------------------------------------------------------------------ helpers
function setStatus(text, kind) {
  $("status").textContent = text;
  document.body.dataset.state = kind || "idle";
}

function headers() {
  const token = sessionStorage.getItem("tmatch-token");
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, options) {
  const res = await fetch(path, Object.assign({}, options, { headers: headers() }));
  if (res.status === 401) {
    $("token-row").hidden = false;
    $("token").focus();
  }
  if (!res.ok) {
    let detail = res.status + " " + res.statusText;
    try { const body = await res.json(); detail = body.detail || detail; } catch (e) { /* not JSON */ }
    const err = new Error(detail);
    err.status = res.status;
    err.retryAfter = Number(res.headers.get("Retry-After") || 0);
    throw err;
  }
  return res;
}

function fmtScore(v) { return Number(v).toFixed(3); }
function fmtMs(v) { return Number(v).toFixed(0); }
function fmtConfidence(v) { return v === undefined || v === null ? "–" : `${Math.round(100 * v)}%`; }

// Draw a polygon [[x, y] x4] on a 2-D context, in the context's pixels.
function drawPolygon(ctx, polygon, scale, label) {
  const lw = Math.max(2, Math.round(Math.max(ctx.canvas.width, ctx.canvas.height) / 250));
  ctx.save();
  ctx.beginPath();
  polygon.forEach(([x, y], i) => (i ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
  ctx.closePath();
  ctx.fillStyle = "rgba(40, 220, 90, 0.22)";
  ctx.fill();
  ctx.lineWidth = lw;
  ctx.strokeStyle = GREEN;
  ctx.stroke();
  if (label) {
    const [x, y] = polygon.reduce(([a, b], [c, d]) => [Math.min(a, c), Math.min(b, d)], [Infinity, Infinity]);
    ctx.font = `bold ${6 * lw + 4}px system-ui, sans-serif`;
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(0,0,0,0.7)";
    const ty = Math.max(6 * lw + 4, y * scale - 6);
    ctx.strokeText(label, x * scale, ty);
    ctx.fillStyle = GREEN;
    ctx.fillText(label, x * scale, ty);
  }
  ctx.restore();
}

// ------------------------------------------------------------ choosing files
function setFile(which, blob, name) {
  setFiles(which, [{ blob, name: name || which }]);
}

// Several templates may be chosen at once: each is searched for in the image.
function setFiles(which, files) {
  if (which === "template") {
    state.templates = files;
    state.template = files[0] || null;
  } else {
    state.image = files[0] || null;
  }
  clearResult();  // what is shown no longer answers what is chosen
  const img = $(which + "-preview");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(files[0].blob);
  img.hidden = false;
  img.parentElement.querySelector(".hint").textContent =
    files.length > 1 ? `${files.length} templates: ${files.map((f) => f.name).join(", ")}` : (files[0].name || "");
  $("find").disabled = !(state.template && state.image);
  if (which === "template" && state.live) registerLiveTemplate();
}

function fromInput(list) { return Array.from(list).map((f) => ({ blob: f, name: f.name })); }

function wireDrop(which) {
  const zone = $(which + "-drop"), input = $(which + "-input");
  input.addEventListener("change", () => {
    if (input.files.length) { setFiles(which, fromInput(input.files)); autoFind(); }
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = fromInput(e.dataTransfer.files);
    if (files.length) { setFiles(which, which === "template" ? files : files.slice(0, 1)); autoFind(); }
  });
}

function autoFind() { if (state.template && state.image) find(); }

async function loadSample(id) {
  if (!id) return;
  setStatus("Loading the sample…", "busy");
  try {
    const [t, i] = await Promise.all([
      api(`/v1/samples/${id}/template.png`).then((r) => r.blob()),
      api(`/v1/samples/${id}/image.jpg`).then((r) => r.blob()),
    ]);
    setFile("template", t, `sample: ${id} (template)`);
    setFile("image", i, `sample: ${id} (image)`);
    await find();
  } catch (e) {
    setStatus("Could not load the sample: " + e.message, "error");
  }
}

// --------------------------------------------------------------- one match
function clearResult() {
  $("result").hidden = true;
  $("result-json").textContent = "";
  $("result-table").querySelector("tbody").innerHTML = "";
  state.urls.forEach((u) => URL.revokeObjectURL(u));
  state.urls = [];
  delete document.body.dataset.results;
}

async function find() {
  if (!(state.template && state.image)) return;
  const region = $("region").value.trim();
  $("find").disabled = true;
  clearResult();  // a failure must not leave the previous answer on screen
  const n = state.templates.length;
  setStatus(`Matching ${n > 1 ? n + " templates" : "the template"} with ${$("method").value}…`, "busy");
  const t0 = performance.now();
  try {
    const answers = [];
    for (const t of state.templates) {
      const form = new FormData();
      form.append("template", t.blob, t.name);
      form.append("image", state.image.blob, state.image.name);
      form.append("method", $("method").value);
      if (region) form.append("region", region);
      const res = await api("/v1/match", { method: "POST", body: form });
      answers.push({ name: t.name, match: await res.json() });
    }
    await showResult(answers, performance.now() - t0);
  } catch (e) {
    clearResult();
    setStatus(e.status === 503 ? `The server is busy; try again in ${e.retryAfter || 1} s.` : e.message, "error");
  } finally {
    $("find").disabled = !(state.template && state.image);
  }
}

function stem(name) { return String(name).replace(/^.*[\\/]/, "").replace(/\.[^.]*$/, ""); }

async function showResult(answers, roundTrip) {
  const bitmap = await createImageBitmap(state.image.blob);
  const canvas = $("result-canvas"), ctx = canvas.getContext("2d");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  ctx.drawImage(bitmap, 0, 0);
  const many = answers.length > 1;
  for (const { name, match: m } of answers) {
    // the server decodes the same file; if sizes differ (it should not), scale the polygon
    const scale = bitmap.width / m.image_size[1];
    if (m.found && m.polygon) drawPolygon(ctx, m.polygon, scale, (many ? stem(name) + " " : "") + fmtScore(m.score));
  }
  const found = answers.filter((a) => a.match.found);
  const m = many ? (found[0] || answers[0]).match : answers[0].match;
  $("result").hidden = false;
  $("result-found").textContent = many ? `${found.length} of ${answers.length}` : (m.found ? "yes" : "no");
  $("result-found").className = found.length ? "yes" : "no";
  $("result-score").textContent = fmtScore(m.score);
  $("result-confidence").textContent = fmtConfidence(m.confidence);
  $("result-ms").textContent = fmtMs(answers.reduce((t, a) => t + a.match.ms, 0));
  $("result-box").textContent = m.box ? m.box.join(", ") : "–";
  $("result-method").textContent = m.method;
  const body = $("result-table").querySelector("tbody");
  body.innerHTML = "";
  $("result-table").hidden = !many;
  for (const { name, match: a } of answers) {
    const tr = document.createElement("tr");
    const cells = [name, a.found ? "yes" : "no", fmtScore(a.score), fmtConfidence(a.confidence), a.box ? a.box.join(", ") : "–", fmtMs(a.ms)];
    cells.forEach((c, i) => {
      const td = document.createElement("td");
      td.textContent = c;
      if (i === 1) td.className = a.found ? "yes" : "no";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  const full = many ? answers.map((a) => Object.assign({ template: a.name }, a.match)) : answers[0].match;
  const shownOne = (x) => {
    const c = Object.assign({}, x);
    if (c.mask) c.mask = { size: x.mask.size, counts: `(${x.mask.counts.length} characters of COCO RLE)` };
    return c;
  };
  $("result-json").textContent = JSON.stringify(many ? full.map(shownOne) : shownOne(full), null, 1);
  // downloads: the whole answer (masks included) and the picture as drawn
  const jsonUrl = URL.createObjectURL(new Blob([JSON.stringify(full, null, 1)], { type: "application/json" }));
  $("download-json").href = jsonUrl;
  state.urls.push(jsonUrl);
  const png = await new Promise((r) => canvas.toBlob(r, "image/png"));
  const pngUrl = URL.createObjectURL(png);
  $("download-png").href = pngUrl;
  state.urls.push(pngUrl);
  applyZoom();
  document.body.dataset.results = String(answers.length);
  setStatus(many
    ? `Found ${found.length} of ${answers.length} templates in ${fmtMs(roundTrip)} ms.`
    : m.found
      ? `Found with score ${fmtScore(m.score)} in ${fmtMs(m.ms)} ms (round trip ${fmtMs(roundTrip)} ms).`
      : `Not found (score ${fmtScore(m.score)}). Try another method.`, "done");
}

// Zoom: fit the page, or 1x/2x/4x the image's pixels (scrolling); a click on the picture
// toggles between fit and 2x.
function applyZoom() {
  const z = $("zoom").value, wrap = $("canvas-wrap"), canvas = $("result-canvas");
  wrap.classList.toggle("fit", z === "fit");
  canvas.style.width = z === "fit" ? "" : `${canvas.width * Number(z)}px`;
  canvas.style.imageRendering = z === "fit" || Number(z) < 2 ? "" : "pixelated";
}

// ------------------------------------------------------------------- live
// One request in flight at a time; when it returns, the newest video frame is sent. Frames
// shown meanwhile are skipped (counted), never queued, so the outline follows the camera at
// the rate the server sustains.
const LIVE_MAX_SIDE = 640;

async function liveStart() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser gives no camera here (it needs http://localhost or https).", "error");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    setStatus("No camera: " + e.message, "error");
    return;
  }
  const video = $("live-video");
  video.srcObject = stream;
  await video.play();
  const live = {
    stream, templateId: null, registering: null, running: true, frames: 0, skipped: 0, presented: 0, sent: 0, lastSentFrame: -1, counting: false,
    started: performance.now(), firstOutlineMs: null, last: null, times: [], picking: false,
    grab: document.createElement("canvas"),
  };
  state.live = live;
  window.tmatchLive = live;
  $("live-stage").hidden = false;
  $("live-numbers").hidden = false;
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  $("live-pick").disabled = false;
  if (state.template) registerLiveTemplate();
  else setStatus("Camera on. Drag a box around something on the video to use it as the template.", "busy");
  requestAnimationFrame(liveDraw);
  liveCountSkipped(video, live);
  liveLoop();
}

function liveStop() {
  const live = state.live;
  if (!live) return;
  live.running = false;
  live.stream.getTracks().forEach((t) => t.stop());
  if (live.templateId) api(`/v1/templates/${live.templateId}`, { method: "DELETE" }).catch(() => {});
  state.live = null;
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
  $("live-pick").disabled = true;
  $("live-stage").hidden = true;
  setStatus("Camera off.", "idle");
}

// Frames the video showed that were never sent (they arrived while a request was out).
function liveCountSkipped(video, live) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  live.counting = true;
  const onFrame = () => {
    if (!live.running) return;
    live.presented += 1;
    live.skipped = Math.max(0, live.presented - live.sent);
    $("live-skipped").textContent = live.skipped;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

async function registerLiveTemplate() {
  const live = state.live;
  if (!live || !state.template) return;
  const old = live.templateId;
  live.templateId = null;
  live.last = null;
  const form = new FormData();
  form.append("template", state.template.blob, state.template.name);
  form.append("method", $("method").value);
  live.registering = api("/v1/templates", { method: "POST", body: form })
    .then((r) => r.json())
    .then((t) => { live.templateId = t.id; setStatus(`Live: looking for the template with ${t.method}.`, "busy"); })
    .catch((e) => setStatus("Could not register the template: " + e.message, "error"))
    .finally(() => { live.registering = null; });
  if (old) api(`/v1/templates/${old}`, { method: "DELETE" }).catch(() => {});
  await live.registering;
}

function grabFrame(live) {
  const video = $("live-video");
  const s = Math.min(1, LIVE_MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const c = live.grab;
  live.sent += 1;
  c.width = Math.round(video.videoWidth * s);
  c.height = Math.round(video.videoHeight * s);
  c.getContext("2d").drawImage(video, 0, 0, c.width, c.height);
  return { canvas: c, scale: s };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function liveLoop() {
  const live = state.live;
  while (live.running) {
    if (!live.templateId || !$("live-video").videoWidth) { await sleep(50); continue; }
    if (live.counting && live.presented === live.lastSentFrame) { await sleep(5); continue; }  // no new frame yet
    live.lastSentFrame = live.presented;
    const { canvas, scale } = grabFrame(live);
    const blob = await new Promise((r) => canvas.toBlob(r, "image/jpeg", 0.85));
    const form = new FormData();
    form.append("image", blob, "frame.jpg");
    const t0 = performance.now();
    try {
      const res = await api(`/v1/templates/${live.templateId}/match?mask=false`, { method: "POST", body: form });
      const m = await res.json();
      if (!live.running) break;
      live.frames += 1;
      const now = performance.now();
      live.times.push(now);
      live.times = live.times.filter((t) => now - t < 3000);
      live.last = { match: m, scale };
      if (m.found && live.firstOutlineMs === null) live.firstOutlineMs = now - live.started;
      $("live-found").textContent = m.found ? "yes" : "no";
      $("live-found").className = m.found ? "yes" : "no";
      $("live-score").textContent = fmtScore(m.score);
      $("live-ms").textContent = fmtMs(now - t0);
      $("live-fps").textContent = (live.times.length / Math.min(3, (now - live.started) / 1000)).toFixed(1);
    } catch (e) {
      if (e.status === 404) { await registerLiveTemplate(); continue; }  // forgotten by the server
      if (e.status === 503) { await sleep(1000 * Math.max(0.2, Math.min(e.retryAfter || 1, 2))); continue; }
      setStatus("Live matching stopped: " + e.message, "error");
      await sleep(1000);
    } finally {
    }
  }
}

function liveDraw() {
  const live = state.live;
  if (!live) return;
  const video = $("live-video"), canvas = $("live-canvas");
  if (video.videoWidth && (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight)) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (live.drag) {
    const { x0, y0, x1, y1 } = live.drag;
    ctx.setLineDash([8, 6]);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#ffd400";
    ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.setLineDash([]);
  } else if (live.last && live.last.match.found && live.last.match.polygon) {
    drawPolygon(ctx, live.last.match.polygon, 1 / live.last.scale, fmtScore(live.last.match.score));
    document.body.dataset.liveOutline = String(live.frames);
  }
  requestAnimationFrame(liveDraw);
}

// Drag a box on the video: the box, cut from the current frame, becomes the template.
function wirePicking() {
  const canvas = $("live-canvas");
  const toVideo = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    const live = state.live;
    if (!live) return;
    const [x, y] = toVideo(e);
    live.drag = { x0: x, y0: y, x1: x, y1: y };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    const live = state.live;
    if (!live || !live.drag) return;
    [live.drag.x1, live.drag.y1] = toVideo(e);
  });
  canvas.addEventListener("pointerup", async () => {
    const live = state.live;
    if (!live || !live.drag) return;
    const { x0, y0, x1, y1 } = live.drag;
    live.drag = null;
    const x = Math.round(Math.min(x0, x1)), y = Math.round(Math.min(y0, y1));
    const w = Math.round(Math.abs(x1 - x0)), h = Math.round(Math.abs(y1 - y0));
    if (w < 16 || h < 16) { setStatus("Drag a larger box (at least 16 × 16 pixels).", "busy"); return; }
    const c = document.createElement("canvas");
    c.width = w; c.height = h;
    c.getContext("2d").drawImage($("live-video"), x, y, w, h, 0, 0, w, h);
    const blob = await new Promise((r) => c.toBlob(r, "image/png"));
    setFile("template", blob, `from the camera (${w} × ${h})`);
  });
  $("live-pick").addEventListener("click", () =>
    setStatus("Drag a box around something on the video: it becomes the template.", "busy"));
}

// ------------------------------------------------------------------- start
async function init() {
  wireDrop("template");
  wireDrop("image");
  wirePicking();
  $("find").addEventListener("click", find);
  $("zoom").addEventListener("change", applyZoom);
  $("result-canvas").addEventListener("click", () => {
    $("zoom").value = $("zoom").value === "fit" ? "2" : "fit";
    applyZoom();
  });
  $("region").addEventListener("change", autoFind);
  $("sample").addEventListener("change", (e) => loadSample(e.target.value));
  $("method").addEventListener("change", () => { if (state.live) registerLiveTemplate(); else autoFind(); });
  $("live-start").addEventListener("click", liveStart);
  $("live-stop").addEventListener("click", liveStop);
  $("token").addEventListener("change", (e) => {
    sessionStorage.setItem("tmatch-token", e.target.value.trim());
    loadLists();
  });
  await loadLists();
}

async function loadLists() {
  try {
    const methods = await (await api("/v1/methods")).json();
    const sel = $("method");
    sel.innerHTML = "";
    for (const m of methods.methods) {
      const o = document.createElement("option");
      o.value = m.name;
      o.textContent = m.name;
      o.title = m.description;
      if (m.name === methods.default) o.selected = true;
      sel.appendChild(o);
    }
    const samples = await (await api("/v1/samples")).json();
    const ss = $("sample");
    ss.length = 1;
    for (const s of samples.samples) {
      const o = document.createElement("option");
      o.value = s.id;
      o.textContent = s.title;
      ss.appendChild(o);
    }
    $("token-row").hidden = !sessionStorage.getItem("tmatch-token");
    document.body.dataset.ready = "1";
  } catch (e) {
    setStatus(e.status === 401 ? "This server needs an access token: enter it above." : "Cannot reach the server: " + e.message, "error");
  }
}

init();
