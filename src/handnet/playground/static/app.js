// handnet playground: the page. It draws what the server sends and sends what the
// learner asks for; all the math runs on the server, in handnet's own classes.
// Messages are JSON objects with a "type" (see handnet/playground/server.py).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { choices: null, settings: null, ready: null, frame: null, drawn: null,
                playing: false, pendingPlay: false, frames: [], frameCount: 0,
                firstFrameAt: null };
// Class colours (blue, orange, green): the points and the boundary's shading.
const COLOURS = [[30, 110, 190], [240, 130, 30], [40, 160, 70]];
const NUMBER_FIELDS = ["n_points", "noise", "test_fraction", "seed", "learning_rate",
                       "batch_size", "l2", "dropout"];

// --- the connection ----------------------------------------------------------------
const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
const send = (message) => socket.send(JSON.stringify(message));
socket.onmessage = (event) => receive(JSON.parse(event.data));
socket.onclose = () => showError("the connection to the server is closed; reload the page");

function receive(message) {
  switch (message.type) {
    case "hello": state.choices = message.choices; buildSettings(); break;
    case "ready":
      state.ready = message; state.settings = message.settings; pointsLayer = null; showSettings();
      break;
    // Acknowledge at once (the server sends the next frame only after that, so frames
    // never pile up in the socket) and draw the latest one on the next animation frame
    // (frames that arrive in between replace each other: the page never falls behind).
    case "frame":
      if (state.frame === state.drawn) requestAnimationFrame(drawFrame);
      state.frame = message;
      if (message.playing) state.pendingPlay = false;
      send({ type: "ack" });
      break;
    case "panel": drawPanel(message); break;
    case "file": saveFile(message); break;
    case "error": showError(message.message); break;
  }
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

// --- the settings form (its choices come from the server's registries) -------------
function options(select, names) {
  select.replaceChildren(...names.map((name) => new Option(name, name)));
}

function buildSettings() {
  const c = state.choices;
  options($("dataset"), Object.keys(c.datasets));
  options($("activation"), c.activations);
  options($("optimizer"), c.optimizers);
  options($("output"), Object.keys(c.outputs));
  $("features").replaceChildren(...c.features.map((name) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${name}"> ${name}`;
    return label;
  }));
  for (const element of document.querySelectorAll("#settings select, #settings input")) {
    element.addEventListener("change", configure);
  }
}

function showSettings() {
  const s = state.settings;
  for (const name of ["dataset", "activation", "optimizer", "output"]) $(name).value = s[name];
  for (const name of NUMBER_FIELDS) $(name).value = s[name];
  for (const box of $("features").querySelectorAll("input")) box.checked = s.features.includes(box.value);
  $("dataset-description").textContent = state.choices.datasets[s.dataset].description;
  $("layer-count").textContent = s.hidden.length;
  $("model-name").textContent = state.ready.model;
  $("score-name").textContent = state.ready.task === "regression" ? "R²" : "accuracy";
  $("layer-widths").replaceChildren(...s.hidden.map((width, i) => {
    const row = document.createElement("div");
    row.innerHTML = `layer ${i + 1}: <span><button data-layer="${i}" data-change="-1">−</button>
      <b>${width}</b> units <button data-layer="${i}" data-change="1">+</button></span>`;
    return row;
  }));
  setPlaying(false);
}

// Every change sends the whole form; the server checks it and answers with a new run
// (or an error, shown above, leaving the old run as it was).
function configure(changes = {}) {
  const s = { ...state.settings };
  for (const name of ["dataset", "activation", "optimizer", "output"]) s[name] = $(name).value;
  for (const name of NUMBER_FIELDS) s[name] = Number($(name).value);
  s.features = [...$("features").querySelectorAll("input:checked")].map((box) => box.value);
  if (changes.hidden) s.hidden = changes.hidden;
  s.output = fittingOutput(s);
  send({ type: "configure", settings: s });
}

// The output handnet's models train on this data and network (so that choosing a data
// set is one click): identity for a regression, softmax for more than two classes,
// sigmoid for two classes with hidden layers (MLPClassifier); without hidden layers
// two classes may have either (LogisticRegression or SoftmaxRegression).
function fittingOutput(s) {
  const data = state.choices.datasets[s.dataset];
  if (data.task === "regression") return "identity";
  if (data.classes > 2) return "softmax";
  if (s.hidden.length || s.output === "identity") return "sigmoid";
  return s.output;
}

function changeLayers(hidden) { configure({ hidden }); }

$("add-layer").onclick = () => {
  if (state.settings.hidden.length < state.choices.limits.max_hidden_layers) changeLayers([...state.settings.hidden, 8]);
};
$("remove-layer").onclick = () => changeLayers(state.settings.hidden.slice(0, -1));
$("layer-widths").onclick = (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const hidden = [...state.settings.hidden], i = Number(button.dataset.layer);
  // Within the server's limits (it would refuse the rest with a message anyway).
  hidden[i] = Math.min(state.choices.limits.max_units, Math.max(1, hidden[i] + Number(button.dataset.change)));
  changeLayers(hidden);
};

// --- controls ----------------------------------------------------------------------
function setPlaying(playing) {
  state.playing = playing;
  $("play").textContent = playing ? "❚❚ pause" : "▶ play";
}
$("play").onclick = () => {
  send({ type: state.playing ? "pause" : "play" });
  setPlaying(!state.playing);
  // Frames sent before the server saw "play" still say it is paused: not a stop.
  state.pendingPlay = state.playing;
};
$("step").onclick = () => { send({ type: "step" }); setPlaying(false); };
$("reset").onclick = () => { send({ type: "reset" }); setPlaying(false); };
$("download-model").onclick = () => send({ type: "download", what: "model" });
$("download-script").onclick = () => send({ type: "download", what: "script" });

function saveFile(message) {
  const bytes = Uint8Array.from(atob(message.base64), (ch) => ch.charCodeAt(0));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: message.mime }));
  link.download = message.name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// --- drawing -----------------------------------------------------------------------
// A frame is drawn several times a second while the server trains: the pictures are
// written pixel by pixel into reused tiles, with no allocation per pixel.
function decode(b64) {
  const text = atob(b64), bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// A byte around 128 (a signed value scaled to [-1, 1]) as a colour: orange below zero,
// blue above, white at zero; looked up in a table of the 256 bytes.
const DIVERGING = new Uint8ClampedArray(256 * 3);
for (let byte = 0; byte < 256; byte++) {
  const t = (byte - 127.5) / 127.5, c = t < 0 ? COLOURS[1] : COLOURS[0], s = Math.min(1, Math.abs(t));
  for (let k = 0; k < 3; k++) DIVERGING[3 * byte + k] = 255 + (c[k] - 255) * s;
}

const tiles = new Map();  // a reused canvas per kind of picture
function paintTile(size, fill, key = size) {
  if (tiles.get(key)?.width !== size) tiles.set(key, new OffscreenCanvas(size, size));
  const tile = tiles.get(key), ctx = tile.getContext("2d");
  const image = ctx.createImageData(size, size);
  fill(image.data);
  ctx.putImageData(image, 0, 0);
  return tile;
}

const fillDiverging = (bytes) => (data) => {
  for (let i = 0; i < bytes.length; i++) {
    const j = 3 * bytes[i];
    data[4 * i] = DIVERGING[j]; data[4 * i + 1] = DIVERGING[j + 1];
    data[4 * i + 2] = DIVERGING[j + 2]; data[4 * i + 3] = 255;
  }
};

// The boundary: each class's colour weighted by its probability, paler where unsure.
const fillBoundary = (boundary) => (data) => {
  const bytes = decode(boundary.data), n = boundary.size * boundary.size, k = boundary.channels;
  if (k === 1) { fillDiverging(bytes)(data); return; }
  for (let i = 0; i < n; i++) {
    let r = 0, g = 0, b = 0, top = 0;
    for (let c = 0; c < k; c++) {
      const p = bytes[c * n + i] / 255;
      r += p * COLOURS[c][0]; g += p * COLOURS[c][1]; b += p * COLOURS[c][2];
      top = Math.max(top, p);
    }
    const s = 0.8 * (top - 1 / k) / (1 - 1 / k);
    data[4 * i] = 255 + (r - 255) * s; data[4 * i + 1] = 255 + (g - 255) * s;
    data[4 * i + 2] = 255 + (b - 255) * s; data[4 * i + 3] = 255;
  }
};

// One class's probability: white (0) to the class's colour (1).
const fillClass = (boundary, c) => (data) => {
  const bytes = decode(boundary.data), n = boundary.size * boundary.size, colour = COLOURS[c];
  for (let i = 0; i < n; i++) {
    const p = bytes[c * n + i] / 255;
    for (let k = 0; k < 3; k++) data[4 * i + k] = 255 + (colour[k] - 255) * p;
    data[4 * i + 3] = 255;
  }
};

// The points change only with the data: drawn once per run onto a layer of their own.
let pointsLayer = null;
function drawPoints(canvas) {
  pointsLayer = new OffscreenCanvas(canvas.width, canvas.height);
  const ctx = pointsLayer.getContext("2d");
  const [x0, x1, y0, y1] = state.ready.bounds;
  const toX = (x) => (x - x0) / (x1 - x0) * canvas.width;
  const toY = (y) => (y1 - y) / (y1 - y0) * canvas.height;
  const scale = Math.max(...state.ready.train.y.map(Math.abs), 1e-9);
  // Training points with a white ring, test points with a black one.
  for (const [part, ring] of [["train", "#fff"], ["test", "#000"]]) {
    const { points, y } = state.ready[part];
    points.forEach(([px, py], i) => {
      const j = 3 * Math.round(127.5 + 127.5 * y[i] / scale);
      const fill = state.ready.task === "regression" ? [DIVERGING[j], DIVERGING[j + 1], DIVERGING[j + 2]]
        : COLOURS[state.ready.classes.indexOf(y[i])];
      ctx.beginPath();
      ctx.arc(toX(px), toY(py), 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${fill.join(",")})`;
      ctx.fill();
      ctx.strokeStyle = ring;
      ctx.stroke();
    });
  }
}

let boundaryTile = null;
function drawBoundary(frame) {
  const canvas = $("boundary"), ctx = canvas.getContext("2d");
  boundaryTile = paintTile(frame.boundary.size, fillBoundary(frame.boundary), "boundary");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(boundaryTile, 0, 0, canvas.width, canvas.height);
  if (pointsLayer === null) drawPoints(canvas);
  ctx.drawImage(pointsLayer, 0, 0);
}

// The network: a column per layer, each unit a picture of its output over the plane,
// the weights as lines (colour: sign; width: size).
function drawNetwork(frame) {
  const canvas = $("network"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // The outputs: one logit shows the boundary; K softmax logits each show their class.
  const nOut = frame.weights.at(-1)[0][0].length;
  const columns = [...frame.units, Array.from({ length: nOut }, (_, c) => (nOut === 1 ? null : c))];
  const box = 34, gapX = (canvas.width - box) / (columns.length - 1);
  const at = (c, u) => {
    const n = columns[c].length, gapY = Math.min(50, (canvas.height - box) / Math.max(n - 1, 1));
    return [c * gapX, (canvas.height - box - gapY * (n - 1)) / 2 + u * gapY];
  };
  frame.weights.forEach(([W], layer) => {
    W.forEach((row, i) => row.forEach((w, j) => {
      const [xa, ya] = at(layer, i), [xb, yb] = at(layer + 1, j);
      ctx.beginPath();
      ctx.moveTo(xa + box, ya + box / 2);
      ctx.lineTo(xb, yb + box / 2);
      ctx.strokeStyle = w >= 0 ? "rgba(30,110,190,0.7)" : "rgba(240,130,30,0.7)";
      ctx.lineWidth = Math.min(6, 0.3 + 2 * Math.abs(w));
      ctx.stroke();
    }));
  });
  ctx.imageSmoothingEnabled = true;
  columns.forEach((units, c) => units.forEach((unit, u) => {
    const [x, y] = at(c, u);
    if (unit === null) ctx.drawImage(boundaryTile, x, y, box, box);
    else if (typeof unit === "number") {
      ctx.drawImage(paintTile(frame.boundary.size, fillClass(frame.boundary, unit), "class"), x, y, box, box);
    } else {
      const bytes = decode(unit.data);
      ctx.drawImage(paintTile(Math.round(Math.sqrt(bytes.length)), fillDiverging(bytes)), x, y, box, box);
    }
    ctx.strokeStyle = "#555"; ctx.lineWidth = 1; ctx.strokeRect(x, y, box, box);
  }));
  ctx.fillStyle = "#444";
  state.settings.features.forEach((name, u) => { const [x, y] = at(0, u); ctx.fillText(name, x, y - 2); });
}

function drawCurves(frame) {
  const canvas = $("curves"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const curve = frame.curve.filter((p) => p[1] !== null && p[2] !== null);
  if (curve.length < 2) return;
  const last = curve[curve.length - 1][0], top = Math.max(...curve.map((p) => Math.max(p[1], p[2])));
  for (const [column, colour] of [[1, "#37474f"], [2, "#ef6c00"]]) {
    ctx.beginPath();
    curve.forEach((p, i) => {
      const x = p[0] / Math.max(last, 1) * canvas.width, y = canvas.height * (1 - p[column] / top);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.stroke();
  }
}

// Numbers keep their exact value in data-value (the tests compare it with Python's).
function showNumber(id, value) {
  const cell = $(id);
  cell.dataset.value = value === null ? "" : String(value);
  cell.textContent = value === null ? "—" : value.toFixed(4);
}

function drawFrame() {
  const frame = state.frame;
  if (!frame || !state.ready) { state.drawn = frame; return; }
  drawBoundary(frame);
  drawNetwork(frame);
  drawCurves(frame);
  for (const name of ["train_loss", "test_loss", "train_score", "test_score"]) showNumber(name.replace("_", "-"), frame[name]);
  $("step-count").textContent = frame.step;
  $("epoch-count").textContent = frame.epoch;
  $("rate").textContent = Math.round(frame.steps_per_second);
  // Frames per second over the last second, measured here (what the learner sees).
  const now = performance.now();
  state.frames = state.frames.filter((t) => now - t < 1000).concat([now]);
  $("fps").textContent = state.frames.length;
  if (state.firstFrameAt === null) state.firstFrameAt = now;
  if (!frame.playing && state.playing && !state.pendingPlay) setPlaying(false); // e.g. diverged
  state.drawn = frame;
  state.frameCount += 1;
}

function drawPanel(panel) {
  $("panel-summary").textContent = `step ${panel.step} (epoch ${panel.epoch}), batch of ` +
    `${panel.rows.length} rows: loss ${panel.loss.toFixed(6)}; the replayed gradients differ ` +
    `from the step's by at most ${panel.gradient_difference}. Update rule ` +
    `(${panel.optimizer}): ${panel.rule}`;
  $("panel").tBodies[0].replaceChildren(...panel.entries.map((entry) => {
    const row = document.createElement("tr");
    row.dataset.name = entry.name;
    row.dataset.values = JSON.stringify(entry.values);
    for (const [text, kind] of [[entry.name, "b"], [entry.formula, "span"], [entry.function, "code"],
                                [entry.shape.join(" × "), "span"], [entry.text, "values"]]) {
      const cell = row.insertCell();
      if (kind === "values") { cell.className = "values"; cell.textContent = text.replace(/^shape \([^)]*\): /, ""); }
      else { const inner = document.createElement(kind); inner.textContent = text; cell.append(inner); }
    }
    return row;
  }));
}

// For tests and the benchmark: the state, and a way to send any text on this socket.
window.handnetPlayground = { state, sendRaw: (text) => socket.send(text), draw: { drawBoundary, drawNetwork, drawCurves } };
