// The Falcon Perception web page: a client of the server's REST API (/v1/...), nothing more.
// Masks arrive as COCO RLE and are decoded here; OCR text streams in as server-sent events.
"use strict";

// The reference demo's palette, so screenshots look alike.
const COLORS = [
  [239, 68, 100], [59, 180, 246], [16, 200, 129], [168, 85, 247], [245, 158, 11],
  [236, 72, 153], [6, 205, 212], [249, 115, 22], [132, 204, 22], [99, 102, 241],
];
const MASK_ALPHA = 120;

const $ = (id) => document.getElementById(id);
const state = {
  imageBase64: null,
  response: null,
  visible: [],
  health: null,
};

function setPageState(s) {
  document.body.dataset.state = s;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, authHeaders());
  return fetch(path, Object.assign({}, options, { headers }));
}

// The error message of a failed answer: {"error": {"message": ...}} or FastAPI's {"detail": ...}.
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body.error && body.error.message) return `${res.status}: ${body.error.message}`;
    if (body.detail) return `${res.status}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`;
  } catch (_) { /* not JSON */ }
  return `HTTP ${res.status}`;
}

// ---------------------------------------------------------------- health and tasks

async function loadHealth() {
  const badge = $("health");
  try {
    const res = await api("/v1/health");
    const h = await res.json();
    state.health = h;
    $("forced-row").hidden = !(h.features && h.features.forced_tokens);
    $("key-row").hidden = !(h.features && h.features.auth);
    if (h.status !== "ready") {
      badge.dataset.state = "loading";
      badge.textContent = "loading model…";
      setTimeout(loadHealth, 1000);
      return;
    }
    badge.dataset.state = "ready";
    badge.textContent = `${h.model || h.model_id} · ${h.workers.map((w) => w.device).join(", ")}`;
    const select = $("task");
    const previous = select.value;
    select.innerHTML = "";
    for (const t of h.supported_tasks) {
      const o = document.createElement("option");
      o.value = t;
      o.textContent = t;
      select.appendChild(o);
    }
    if (h.supported_tasks.includes(previous)) select.value = previous;
    onTaskChange();
  } catch (e) {
    badge.dataset.state = "error";
    badge.textContent = "server unreachable";
    setTimeout(loadHealth, 2000);
  }
}

function isOcr() {
  return $("task").value.startsWith("ocr");
}

function onTaskChange() {
  $("query-row").hidden = isOcr();
  updateRunButton();
}

function updateRunButton() {
  const ready = state.health && state.health.status === "ready";
  $("run").disabled = !(ready && state.imageBase64 && (isOcr() || $("query").value.trim()));
}

// ---------------------------------------------------------------- image input

function loadFile(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = reader.result;  // data:image/...;base64,...
    state.imageBase64 = url.slice(url.indexOf(",") + 1);
    state.response = null;
    $("image").onload = () => {
      $("stage").hidden = false;
      $("placeholder").hidden = true;
      fitStage();
      clearResult();
    };
    $("image").src = url;
    $("drop-text").textContent = file.name;
    updateRunButton();
  };
  reader.onerror = () => showError("cannot read " + file.name);
  reader.readAsDataURL(file);
}

function setupDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => loadFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    loadFile(e.dataTransfer.files[0]);
  });
}

// Scales the image (small ones up, large ones down) to the view's width and the window's
// height; the canvases on top keep the image's own pixel size.
function fitStage() {
  const img = $("image");
  if (!img.naturalWidth) return;
  const room = $("stage").parentElement.clientWidth - 32;
  const scale = Math.min(room / img.naturalWidth, (window.innerHeight * 0.75) / img.naturalHeight);
  $("stage").style.width = `${Math.floor(img.naturalWidth * scale)}px`;
  $("stage").style.height = `${Math.floor(img.naturalHeight * scale)}px`;
}

// ---------------------------------------------------------------- COCO RLE

// pycocotools' compressed counts string -> run lengths (rleFrString).
function rleCounts(counts) {
  if (Array.isArray(counts)) return counts;
  const out = [];
  let p = 0;
  while (p < counts.length) {
    let x = 0, k = 0, more = 1;
    while (more) {
      const c = counts.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p++;
      k++;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (out.length > 2) x += out[out.length - 2];
    out.push(x);
  }
  return out;
}

// Paints one mask into RGBA pixels (row-major, width w). Runs alternate 0/1 starting
// with 0, over pixels in column-major order. Returns the number of pixels set.
function paintRle(rle, pixels, w, color) {
  const [h, mw] = rle.size;
  if (mw !== w) return 0;
  const runs = rleCounts(rle.counts);
  let pos = 0, painted = 0;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if (i % 2 === 1) {
      for (let j = pos; j < pos + n; j++) {
        const x = Math.floor(j / h), y = j % h;
        const o = (y * w + x) * 4;
        pixels[o] = color[0];
        pixels[o + 1] = color[1];
        pixels[o + 2] = color[2];
        pixels[o + 3] = MASK_ALPHA;
      }
      painted += n;
    }
    pos += n;
  }
  return painted;
}

// ---------------------------------------------------------------- drawing

function clearResult() {
  for (const id of ["masks", "boxes"]) {
    const c = $(id);
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
  $("instances-box").hidden = true;
  $("timings-box").hidden = true;
  $("text-box").hidden = true;
}

function draw() {
  const r = state.response;
  if (!r) return;
  const w = r.image_width, h = r.image_height;
  const masks = $("masks"), boxes = $("boxes");
  for (const c of [masks, boxes]) {
    c.width = w;
    c.height = h;
  }
  const mctx = masks.getContext("2d");
  const image = mctx.createImageData(w, h);
  const bctx = boxes.getContext("2d");
  bctx.clearRect(0, 0, w, h);
  // Lines and labels of the same size on screen whatever the image's scale.
  const perScreenPixel = w / Math.max(1, $("stage").clientWidth || w);
  bctx.lineWidth = Math.max(1, 2 * perScreenPixel);
  bctx.font = `${13 * perScreenPixel}px system-ui, sans-serif`;
  r.masks.forEach((m, i) => {
    if (!state.visible[i]) return;
    const color = COLORS[i % COLORS.length];
    if (m.rle && m.rle.counts !== undefined) paintRle(m.rle, image.data, w, color);
    const [x1, y1, x2, y2] = m.bbox;
    bctx.strokeStyle = `rgb(${color.join(",")})`;
    bctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    bctx.fillStyle = bctx.strokeStyle;
    bctx.fillText(m.label, x1 + 2 * perScreenPixel, Math.max(y1 - 4 * perScreenPixel, 13 * perScreenPixel));
  });
  mctx.putImageData(image, 0, 0);
}

function renderInstances() {
  const r = state.response;
  const list = $("instances");
  list.innerHTML = "";
  r.masks.forEach((m, i) => {
    const li = document.createElement("li");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = state.visible[i];
    box.dataset.index = i;
    box.addEventListener("change", () => {
      state.visible[i] = box.checked;
      draw();
    });
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = `rgb(${COLORS[i % COLORS.length].join(",")})`;
    const label = document.createElement("span");
    const [x1, y1, x2, y2] = m.bbox.map((v) => Math.round(v));
    label.textContent = `${m.label} [${x1}, ${y1}, ${x2}, ${y2}]${m.rle && m.rle.counts !== undefined ? " · mask" : ""}`;
    li.append(box, sw, label);
    list.appendChild(li);
  });
  $("instances-box").hidden = r.masks.length === 0;
  $("toggle-all").textContent = state.visible.some((v) => v) ? "hide all" : "show all";
}

function renderTimings() {
  const r = state.response;
  const rows = [
    ["total (server)", r.total_time_ms, "ms"],
    ["queue", r.queue_ms, "ms"],
    ["preprocess", r.tokenize_time_ms, "ms"],
    ["prefill", r.prefill_time_ms, "ms"],
    ["decode", r.decode_time_ms, "ms"],
    ["masks", r.finalize_time_ms, "ms"],
    ["input tokens", r.input_tokens, ""],
    ["from image cache", r.cached_tokens, ""],
    ["output tokens", r.output_tokens, ""],
    ["decode steps", r.num_decode_steps, ""],
    ["avg decode batch", r.avg_decode_batch_size, ""],
  ];
  const table = $("timings");
  table.innerHTML = "";
  for (const [name, value, unit] of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td");
    const b = document.createElement("td");
    a.textContent = name;
    b.textContent = typeof value === "number" ? (unit ? `${value.toFixed(1)} ${unit}` : String(+value.toFixed(2))) : "–";
    tr.append(a, b);
    table.appendChild(tr);
  }
  $("timings-box").hidden = false;
}

function renderText(text) {
  $("text").textContent = text;
  $("text-box").hidden = !(text && (isOcr() || !state.response || state.response.masks.length === 0));
}

function showResponse(r) {
  state.response = r;
  state.visible = r.masks.map(() => true);
  draw();
  renderInstances();
  renderTimings();
  renderText(r.text);
}

// ---------------------------------------------------------------- requests

function requestBody() {
  const body = { image: { base64: state.imageBase64 }, task: $("task").value };
  if (!isOcr()) body.query = $("query").value.trim();
  const num = (id) => {
    const v = $(id).value.trim();
    return v === "" ? undefined : Number(v);
  };
  if (num("max-tokens") !== undefined) body.max_tokens = num("max-tokens");
  if (num("min-size") !== undefined) body.min_image_size = num("min-size");
  if (num("max-size") !== undefined) body.max_image_size = num("max-size");
  const forced = $("forced").value.trim();
  if (forced && !$("forced-row").hidden) body.forced_tokens = forced.split(",").map((s) => s.trim()).filter(Boolean);
  if (isOcr()) body.stream = true;
  return body;
}

// Reads a text/event-stream answer: `text` events as they come, then `result` or `error`.
async function readEvents(res, onText) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      const payload = data ? JSON.parse(data) : {};
      if (event === "text") onText(payload.text);
      else if (event === "result") return payload;
      else if (event === "error") throw new Error(`${payload.status}: ${payload.error.message}`);
    }
  }
  throw new Error("the stream ended without a result");
}

async function run() {
  showError("");
  clearResult();
  $("run").disabled = true;
  setPageState("running");
  try {
    const body = requestBody();
    const res = await api("/v1/predictions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    let result;
    if ((res.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      let text = "";
      $("text-box").hidden = false;
      result = await readEvents(res, (piece) => {
        text += piece;
        $("text").textContent = text;
      });
    } else {
      result = await res.json();
    }
    showResponse(result);
    setPageState("done");
  } catch (e) {
    showError(e.message);
    setPageState("error");
  } finally {
    updateRunButton();
  }
}

// ---------------------------------------------------------------- wiring

function main() {
  setPageState("idle");
  setupDrop();
  $("task").addEventListener("change", onTaskChange);
  $("query").addEventListener("input", updateRunButton);
  $("query").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !$("run").disabled) run();
  });
  $("run").addEventListener("click", run);
  window.addEventListener("resize", fitStage);
  $("toggle-all").addEventListener("click", () => {
    const show = !state.visible.some((v) => v);
    state.visible = state.visible.map(() => show);
    draw();
    renderInstances();
  });
  loadHealth();
}

main();
