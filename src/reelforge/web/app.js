// The reelforge playground: a form generated from /v2/models, live progress, a gallery.
// Plain ES module, no build step and no third-party code; it talks only to this server.

const KEY_STORAGE = "reelforge.apiKey";
const CREDITS_PER_USD = 2_000_000;
const MAX_IMAGE_SIDE = 2048; // larger pictures are scaled down here before upload
const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
const GALLERY_PAGE = 12;
const GENERATIONS = "/v2/video/generations";

const $ = (selector) => document.querySelector(selector);
const state = {
  key: localStorage.getItem(KEY_STORAGE) || "",
  models: [],
  media: new Map(), // field name -> list of image/video references (data: or http URLs)
  current: null, // id of the generation shown in "This generation"
  lastRequest: null,
  follow: null, // AbortController of the live view
  cursor: null,
};

// -- HTTP --------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body, query, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.message) || `HTTP ${response.status}`);
  }
  return data;
}

// -- the key -----------------------------------------------------------------------

function showKeyState() {
  $("#key-state").textContent = state.key ? "A key is saved." : "No key yet: paste one to start.";
  $("#api-key").value = state.key;
  $("#submit").disabled = !state.key;
}

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("#api-key").value.trim();
  if (!state.key) return;
  localStorage.setItem(KEY_STORAGE, state.key);
  showKeyState();
  loadGallery(true);
});

$("#forget-key").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORAGE);
  state.key = "";
  showKeyState();
  $("#gallery").replaceChildren();
  $("#more").hidden = true;
});

// -- the form, generated from /v2/models ------------------------------------------

const LABELS = {
  prompt: "Prompt", negative_prompt: "Negative prompt", seed: "Seed", duration: "Duration (s)",
  aspect_ratio: "Aspect ratio", resolution: "Resolution", generate_audio: "Audio",
  enhance_prompt: "Enhance prompt", image_url: "Image", tail_image_url: "Last frame",
  last_image_url: "Last frame", image_urls: "Reference images", video_url: "Video to extend",
};

function labelOf(name) {
  return LABELS[name] || name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

function fieldBox(name, control, required) {
  const error = element("p", { class: "error", id: `err-${name}`, hidden: true });
  control.setAttribute("aria-describedby", `err-${name}`);
  const label = element("label", { for: `f-${name}`, text: labelOf(name) + (required ? " *" : "") });
  return element("div", { class: "field", "data-field": name }, label, control, error);
}

function controlFor(name, spec, required) {
  const id = `f-${name}`;
  if (spec.input) return mediaControl(name, spec);
  if (Array.isArray(spec.enum)) {
    const select = element("select", { id, name });
    if (!required && spec.default == null) select.append(element("option", { value: "", text: "(default)" }));
    for (const value of spec.enum) {
      select.append(element("option", { value: String(value), text: String(value), selected: value === spec.default }));
    }
    return select;
  }
  if (spec.type === "boolean") {
    return element("input", { id, name, type: "checkbox", checked: spec.default === true });
  }
  if (name === "prompt" || name === "negative_prompt") {
    return element("textarea", { id, name, maxlength: spec.maxLength, required });
  }
  if (spec.type === "integer") {
    const input = element("input", { id, name, type: "number", inputmode: "numeric", min: spec.minimum, max: spec.maximum, placeholder: name === "seed" ? "random" : "" });
    if (name !== "seed") return input;
    const random = element("button", { type: "button", class: "secondary", text: "Random" });
    random.addEventListener("click", () => {
      input.value = String(Math.floor(Math.random() * (spec.maximum ?? 2 ** 32 - 1)));
      updateCost();
    });
    const box = element("div", { class: "row" }, input, random);
    box.id = `box-${name}`;
    input.addEventListener("input", updateCost);
    return box;
  }
  return element("input", { id, name, type: "text" });
}

function mediaControl(name, spec) {
  const multiple = spec.type === "array";
  const isVideo = spec.input === "video";
  const accept = isVideo ? "video/mp4,video/quicktime,video/webm" : "image/*";
  const file = element("input", { id: `f-${name}`, type: "file", accept, multiple, "aria-label": `${labelOf(name)} file` });
  const url = element("input", { type: "url", placeholder: `or paste ${isVideo ? "a video" : "an image"} URL`, "aria-label": `${labelOf(name)} URL`, id: `url-${name}` });
  const previews = element("div", { class: "previews", "aria-live": "polite" });
  const clear = element("button", { type: "button", class: "secondary", text: "Clear" });
  const zone = element("div", { class: "drop", tabindex: "0", "aria-label": `${labelOf(name)}: drop, paste or choose a file` },
    element("span", { class: "muted", text: isVideo ? "Drop a video here or choose a file" : "Drop, paste (Ctrl+V) or choose an image" }),
    file, url, previews, clear);
  state.media.set(name, []);

  const show = () => {
    const items = state.media.get(name);
    previews.replaceChildren(...items.map((src) => isVideo
      ? element("span", { class: "muted", text: src.startsWith("data:") ? "video file ready" : src })
      : element("img", { src, alt: `${labelOf(name)} preview` })));
    updateCost();
  };
  const add = async (files) => {
    const limit = multiple ? spec.maxItems || 3 : 1;
    for (const item of files) {
      const value = isVideo ? await readAsDataUrl(item) : await preparedImage(item);
      const list = multiple ? state.media.get(name) : [];
      list.push(value);
      state.media.set(name, list.slice(-limit));
    }
    show();
  };
  file.addEventListener("change", () => add([...file.files]));
  url.addEventListener("change", () => {
    const value = url.value.trim();
    if (value) state.media.set(name, multiple ? [...state.media.get(name), value] : [value]);
    show();
  });
  clear.addEventListener("click", () => { state.media.set(name, []); file.value = ""; url.value = ""; show(); });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    add([...event.dataTransfer.files]);
  });
  zone.addEventListener("paste", (event) => {
    const files = [...event.clipboardData.files];
    if (files.length) { event.preventDefault(); add(files); }
  });
  zone.id = `box-${name}`;
  return zone;
}

function readAsDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function preparedImage(file) {
  // Big pictures are scaled down (and re-encoded) here, so uploads stay small.
  const bitmap = await createImageBitmap(file);
  const side = Math.max(bitmap.width, bitmap.height);
  if (side <= MAX_IMAGE_SIDE && file.size <= MAX_IMAGE_BYTES) {
    bitmap.close();
    return readAsDataUrl(file);
  }
  const scale = Math.min(1, MAX_IMAGE_SIDE / side);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return canvas.toDataURL("image/jpeg", 0.9);
}

function selectedModel() {
  return state.models.find((model) => model.id === $("#model").value);
}

function buildForm(values = {}) {
  const model = selectedModel();
  state.media.clear();
  const boxes = Object.entries(model.parameters).map(([name, spec]) => {
    const required = model.required.includes(name);
    return fieldBox(name, controlFor(name, spec, required), required);
  });
  $("#fields").replaceChildren(...boxes);
  $("#model-help").textContent = `${model.title} · starts from ${model.input} · engine ${model.engine}`;
  $("#engine-note").hidden = model.engine !== "preview";
  for (const [name, value] of Object.entries(values)) fill(name, value);
  for (const input of $("#fields").querySelectorAll("input, select, textarea")) {
    input.addEventListener("change", updateCost);
  }
  updateCost();
}

function fill(name, value) {
  if (state.media.has(name)) {
    state.media.set(name, Array.isArray(value) ? [...value] : [value]);
    const box = document.getElementById(`box-${name}`);
    box?.querySelector(".previews")?.replaceChildren(
      ...state.media.get(name).map((src) => element("img", { src, alt: `${labelOf(name)} preview` })));
    return;
  }
  const control = document.getElementById(`f-${name}`);
  if (!control) return;
  if (control.type === "checkbox") control.checked = Boolean(value);
  else control.value = value == null ? "" : String(value);
}

function collect() {
  const model = selectedModel();
  const body = { model: model.id };
  for (const [name, spec] of Object.entries(model.parameters)) {
    if (state.media.has(name)) {
      const items = state.media.get(name);
      if (items.length) body[name] = spec.type === "array" ? items : items[0];
      continue;
    }
    const control = document.getElementById(`f-${name}`);
    if (!control) continue;
    if (control.type === "checkbox") {
      if (control.checked !== spec.default) body[name] = control.checked;
      continue;
    }
    const raw = control.value.trim();
    if (raw === "") continue;
    body[name] = spec.type === "integer" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  return body;
}

function updateCost() {
  const model = selectedModel();
  if (!model) return;
  const body = collect();
  const duration = Number(body.duration ?? model.parameters.duration?.default ?? 0);
  const silent = body.generate_audio === false && model.credits_per_second_without_audio;
  const rate = silent ? model.credits_per_second_without_audio : model.credits_per_second;
  const credits = rate * duration;
  $("#cost").textContent = `Costs ${credits.toLocaleString("en")} credits ($${(credits / CREDITS_PER_USD).toFixed(4)})`;
}

function clearErrors() {
  for (const node of document.querySelectorAll(".field .error")) { node.hidden = true; node.textContent = ""; }
  for (const node of document.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  $("#form-error").hidden = true;
}

function fieldOf(message) {
  // Messages name their field: "Body validation error: duration: ...", "image_url is ...".
  const validation = /validation error: ([a-z_]+)/i.exec(message);
  const name = validation ? validation[1] : /^([a-z_]+)(\[\d+\])?\b/.exec(message)?.[1];
  return name && document.querySelector(`.field[data-field="${name}"]`) ? name : null;
}

// The server's messages follow the AI/ML API's validator ("Body validation error: seed:
// Number must be between 0 and 4294967295, received -4"); under its field a person reads
// "Must be between 0 and 4294967295 (you gave -4)". The full text stays in the tooltip.
function humanize(message, name) {
  let text = message.replace(new RegExp(`^Body validation error: ${name}(\\[\\d+\\])?: `), "");
  if (text === message) return message; // not the validator's words: already a sentence
  if (/^Required\b/.test(text)) return "Required.";
  text = text
    .replace(/^Invalid enum value\. Expected (.+?), received (.+)$/, (_, choices, given) =>
      `Choose one of ${choices.split(" | ").join(", ")} (you gave ${given}).`)
    .replace(/, received undefined$/, "")
    .replace(/, received (.+)$/, " (you gave $1)")
    .replace(/^(Number|String|Array) must/, "Must");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function showError(message) {
  const name = fieldOf(message);
  if (!name) {
    $("#form-error").textContent = message;
    $("#form-error").hidden = false;
    return;
  }
  const error = document.getElementById(`err-${name}`);
  error.textContent = humanize(message, name);
  error.title = message;
  error.hidden = false;
  const control = document.getElementById(`f-${name}`);
  control?.setAttribute("aria-invalid", "true");
  control?.focus();
}

$("#model").addEventListener("change", () => buildForm());

$("#generate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = collect();
  $("#submit").disabled = true;
  try {
    const created = await api(GENERATIONS, { method: "POST", body });
    state.lastRequest = body;
    showSnippet("curl");
    openGeneration(created.id);
    loadGallery(true);
  } catch (error) {
    showError(error.message);
  } finally {
    $("#submit").disabled = !state.key;
  }
});

// -- one generation, live ------------------------------------------------------------

function openGeneration(id) {
  state.follow?.abort();
  state.current = id;
  $("#current").hidden = false;
  $("#result").replaceChildren();
  $("#result-actions").hidden = true;
  $("#progress").value = 0;
  $("#progress-text").textContent = "Submitted…";
  const controller = new AbortController();
  state.follow = controller;
  follow(id, controller.signal).then(() => {
    if (!controller.signal.aborted) loadGallery(true); // its card shows the outcome too
  }, (error) => {
    if (!controller.signal.aborted) $("#progress-text").textContent = `Lost track: ${error.message}`;
  });
}

async function follow(id, signal) {
  try {
    await followEvents(id, signal);
  } catch (error) {
    if (signal.aborted) return;
    await followLongPoll(id, signal); // no live events (a proxy that buffers): long-poll
  }
}

async function followEvents(id, signal) {
  const url = new URL(`${GENERATIONS}/events`, location.origin);
  url.searchParams.set("generation_id", id);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" }, signal });
  if (!response.ok || !response.body) throw new ApiError(response.status, "no live events");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\r\n/g, "\n"); // servers may end lines with CRLF
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trimStart()).join("\n");
      if (!data) continue;
      const generation = JSON.parse(data);
      render(generation);
      if (isFinal(generation)) { reader.cancel(); return; }
    }
  }
  throw new ApiError(0, "the event stream ended early");
}

async function followLongPoll(id, signal) {
  for (;;) {
    const generation = await api(GENERATIONS, { query: { generation_id: id, wait: 10 }, signal });
    render(generation);
    if (isFinal(generation)) return;
  }
}

const isFinal = (generation) => generation.status === "completed" || generation.status === "error";

function render(generation) {
  if (generation.id !== state.current) return;
  const started = Date.parse(generation.created_at);
  const elapsed = Number.isFinite(started) ? ((Date.now() - started) / 1000).toFixed(1) : "?";
  const percent = Math.round(generation.progress ?? 0);
  const stage = generation.stage ? ` · ${generation.stage}` : "";
  $("#progress").value = percent;
  $("#progress-text").textContent = `${generation.status}${stage} · ${percent}% · ${elapsed} s`;
  $("#cancel-current").hidden = isFinal(generation);
  $("#result-actions").hidden = false;
  $("#download").hidden = true;
  if (generation.video_expired) {
    $("#result").replaceChildren(element("p", { class: "muted", text: "This video expired: the server deleted it after its retention period. Reuse the settings to make it again." }));
  } else if (generation.status === "completed" && generation.video) {
    const video = element("video", { src: generation.video.url, controls: true, muted: true, loop: true, autoplay: true, playsinline: true, poster: generation.video.thumbnail_url, "aria-label": "The generated video" });
    video.muted = true;
    $("#result").replaceChildren(video);
    $("#download").href = generation.video.url;
    $("#download").hidden = false;
  } else if (generation.status === "error") {
    $("#result").replaceChildren(element("p", { class: "error", role: "alert", text: `${generation.error?.name}: ${generation.error?.message}` }));
  }
}

$("#cancel-current").addEventListener("click", () => cancel(state.current));
$("#reuse").addEventListener("click", () => {
  if (!state.lastRequest) return;
  const { model, ...values } = state.lastRequest;
  $("#model").value = model;
  buildForm(values);
  $("#f-prompt")?.focus();
});

// -- copy as curl / Python / CLI -------------------------------------------------------

const CLI_OPTIONS = { duration: "--duration", aspect_ratio: "--aspect-ratio", resolution: "--resolution", seed: "--seed", negative_prompt: "--negative-prompt", image_url: "--image", tail_image_url: "--last-frame", last_image_url: "--last-frame" };
const quote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

function snippet(kind, body) {
  const base = location.origin;
  if (kind === "curl") {
    return `curl -X POST ${base}${GENERATIONS} \\\n  -H "Authorization: Bearer $REELFORGE_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d ${quote(JSON.stringify(body))}`;
  }
  const { model, prompt, ...params } = body;
  if (kind === "python") {
    const args = Object.entries(params).map(([name, value]) => `        ${name}=${JSON.stringify(value).replace(/^true$/, "True").replace(/^false$/, "False")},`);
    return ["from reelforge import Client", "", `with Client(base_url="${base}") as client:  # key: $REELFORGE_API_KEY`, "    video = client.generate(", `        ${JSON.stringify(model)},`, `        ${JSON.stringify(prompt)},`, ...args, "    )", '    client.download(video, "output.mp4")'].join("\n");
  }
  const parts = ["reelforge generate", quote(prompt), "--model", quote(model), "--base-url", base];
  for (const [name, value] of Object.entries(params)) {
    if (CLI_OPTIONS[name]) {
      const shown = String(value).startsWith("data:") ? "<your image file>" : value;
      parts.push(CLI_OPTIONS[name], quote(shown));
    } else if (name === "generate_audio" && value === false) parts.push("--no-audio");
    else if (name === "enhance_prompt" && value === false) parts.push("--no-enhance");
  }
  return parts.join(" ");
}

function showSnippet(kind) {
  if (!state.lastRequest) return;
  const text = snippet(kind, state.lastRequest);
  $("#snippet").textContent = text;
  navigator.clipboard?.writeText(text).catch(() => {});
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.addEventListener("click", () => showSnippet(button.dataset.copy));
}

// -- the gallery ---------------------------------------------------------------------

async function loadGallery(reset) {
  if (!state.key) return;
  if (reset) state.cursor = null;
  try {
    const page = await api(GENERATIONS, { query: { limit: GALLERY_PAGE, after: state.cursor } });
    const cards = page.data.map(card);
    if (reset) $("#gallery").replaceChildren(...cards);
    else $("#gallery").append(...cards);
    state.cursor = page.next_cursor;
    $("#more").hidden = !page.has_more;
  } catch (error) {
    $("#gallery").replaceChildren(element("li", { class: "error", role: "alert", text: error.message }));
  }
}

function card(generation) {
  const video = generation.video;
  let picture;
  if (video?.thumbnail_url) picture = element("img", { src: video.thumbnail_url, alt: `Thumbnail of ${generation.id}`, loading: "lazy" });
  else if (video?.url) picture = element("video", { src: video.url, preload: "metadata", muted: true, "aria-label": `Video ${generation.id}` });
  else picture = element("div", { class: "muted", text: generation.video_expired ? "video expired" : "no video yet" });
  const open = element("button", { type: "button", class: "secondary", text: "Open" });
  open.addEventListener("click", () => openGeneration(generation.id));
  const actions = element("div", { class: "row" }, open);
  if (!isFinal(generation)) {
    const stop = element("button", { type: "button", class: "secondary", text: "Cancel" });
    stop.addEventListener("click", () => cancel(generation.id));
    actions.append(stop);
  }
  const remove = element("button", { type: "button", class: "secondary", text: "Delete" });
  remove.addEventListener("click", () => removeGeneration(generation.id));
  actions.append(remove);
  const item = element("li", { "data-id": generation.id, "data-status": generation.status },
    picture,
    element("strong", { class: `status-${generation.status}`, text: generation.status }),
    element("span", { class: "muted", text: `${generation.model} · ${new Date(generation.created_at).toLocaleString()}` }));
  // What the user typed; the engine's (enhanced) prompt is in the tooltip when it differs.
  const typed = generation.prompt ?? generation.prompt_used;
  if (typed) {
    const prompt = element("span", { class: "prompt", text: typed });
    if (generation.prompt_used && generation.prompt_used !== typed) prompt.title = `Sent to the engine as: ${generation.prompt_used}`;
    item.append(prompt);
  }
  if (generation.error) item.append(element("span", { class: "error", text: `${generation.error.name}: ${generation.error.message}` }));
  item.append(actions);
  return item;
}

async function cancel(id) {
  try {
    await api(`${GENERATIONS}/cancel`, { method: "POST", query: { generation_id: id } });
  } catch (error) {
    if (error.status !== 409) alert(error.message); // 409: it finished meanwhile
  }
  loadGallery(true);
}

async function removeGeneration(id) {
  if (!confirm("Delete this generation and its video?")) return;
  try {
    await api(GENERATIONS, { method: "DELETE", query: { generation_id: id } });
  } catch (error) {
    alert(error.message);
  }
  if (state.current === id) $("#current").hidden = true;
  loadGallery(true);
}

$("#refresh").addEventListener("click", () => loadGallery(true));
$("#more").addEventListener("click", () => loadGallery(false));

// -- start -------------------------------------------------------------------------

async function start() {
  showKeyState();
  const listed = await api("/v2/models");
  state.models = listed.data;
  $("#model").replaceChildren(...state.models.map((model) => element("option", { value: model.id, text: `${model.id} — ${model.title}` })));
  buildForm();
  document.body.dataset.ready = "true";
  loadGallery(true);
}

start().catch((error) => {
  $("#form-error").textContent = `Could not load the models: ${error.message}`;
  $("#form-error").hidden = false;
});
