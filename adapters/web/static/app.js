// The imaginebot playground: a channel-like page over the JSON API and one WebSocket per channel.
// Plain DOM, no build step. Text from users is only ever set with textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const CHANNEL_RE = /^[A-Za-z0-9_-]{1,32}$/;
const FAVOURITES_KEY = "imaginebot.favourites";

const state = {
  me: null,
  channel: null,
  ws: null,
  retry: 0,
  cards: new Map(), // job id -> {frame, images, el}
  revealed: new Set(), // flagged job ids whose images were clicked into view
  nextCursor: null,
};

// --- small helpers ---------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.error) || `The server answered ${response.status}.`);
    error.retryAt = data && data.retry_at;
    throw error;
  }
  return data;
}

let toastTimer = null;
function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

function timeOf(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function favourites() {
  try { return new Set(JSON.parse(localStorage.getItem(FAVOURITES_KEY) || "[]")); } catch (_) { return new Set(); }
}

function saveFavourites(set) {
  localStorage.setItem(FAVOURITES_KEY, JSON.stringify([...set].slice(-500)));
}

// --- name and channels ------------------------------------------------------------------------
async function saveName(event) {
  event.preventDefault();
  try {
    const data = await api("POST", "/api/me", { name: $("#name").value });
    state.me.name = data.name;
    $("#name").value = data.name;
    $("#name-hint").textContent = `You are ${data.name}.`;
    updateComposer();
    $("#prompt").focus();
  } catch (error) { toast(error.message); }
}

function updateComposer() {
  const named = Boolean(state.me && state.me.name);
  $("#prompt").disabled = !named;
  $("#send").disabled = !named;
  $("#prompt").placeholder = named ? "/imagine a lighthouse at dusk --ar 16:9 --n 4" : "Pick a name first (top left)";
}

async function loadChannels(extra) {
  let names = [];
  try { names = (await api("GET", "/api/channels")).channels; } catch (error) { toast(error.message); }
  for (const name of [extra, state.channel]) if (name && !names.includes(name)) names.unshift(name);
  const list = $("#channels");
  list.replaceChildren(...names.map((name) => el("li", {},
    el("a", { href: `#c=${name}`, class: name === state.channel ? "active" : "", text: `# ${name}` }))));
}

function addChannel(event) {
  event.preventDefault();
  const name = $("#new-channel").value.trim();
  if (!CHANNEL_RE.test(name)) { toast("A channel name is 1 to 32 letters, digits, dashes or underscores."); return; }
  $("#new-channel").value = "";
  location.hash = `c=${name}`;
}

function channelFromLocation() {
  const hash = new URLSearchParams(location.hash.slice(1)).get("c");
  const query = new URLSearchParams(location.search).get("c");
  for (const name of [hash, query]) if (name && CHANNEL_RE.test(name)) return name;
  return state.me.default_channel;
}

async function openChannel(name) {
  if (state.channel === name && state.ws) return;
  state.channel = name;
  state.cards.clear();
  $("#cards").replaceChildren();
  $("#channel-title").textContent = `# ${name}`;
  $("#gallery-link").href = `/c/${name}`;
  document.title = `#${name} · imaginebot`;
  connect();
  await loadCards(null);
  loadChannels(name);
  scrollToEnd(true);
}

// --- live updates -----------------------------------------------------------------------------
function connect() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  const channel = state.channel;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/${encodeURIComponent(channel)}`);
  state.ws = ws;
  ws.onopen = () => {
    if (state.retry > 0) loadCards(null); // catch up on what happened while we were away
    state.retry = 0;
  };
  ws.onmessage = (message) => handleEvent(JSON.parse(message.data));
  ws.onclose = () => {
    if (state.channel !== channel) return;
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(() => { if (state.channel === channel) connect(); }, 500 * 2 ** state.retry);
  };
}

function handleEvent(event) {
  if (event.type === "card") upsertCard(event);
  else if (event.type === "images") setImages(event.job, event.images);
  else if (event.type === "deleted") removeCard(event.job_id);
}

async function loadCards(cursor) {
  const path = `/api/channels/${encodeURIComponent(state.channel)}/cards` + (cursor ? `?cursor=${encodeURIComponent(cursor)}` : "");
  try {
    const page = await api("GET", path);
    for (const frame of page.cards) upsertCard(frame, { older: true });
    if (cursor || state.nextCursor === null) state.nextCursor = page.next_cursor;
    $("#older").hidden = !state.nextCursor;
  } catch (error) { toast(error.message); }
}

// --- cards ------------------------------------------------------------------------------------
function upsertCard(frame, { older = false } = {}) {
  const id = frame.job.id;
  let entry = state.cards.get(id);
  if (entry && entry.frame.final && !frame.final) return; // a late frame never undoes the final state
  if (!entry) {
    entry = { frame, images: frame.images || [], el: el("article", { class: "card", data: { job: id } }) };
    state.cards.set(id, entry);
    placeCard(entry);
  } else {
    entry.frame = frame;
    if (frame.images) entry.images = frame.images;
  }
  renderCard(entry);
  if (!older) scrollToEnd(false);
}

function placeCard(entry) {
  const container = $("#cards");
  const created = entry.frame.job.created_at;
  const after = [...container.children].find((node) => {
    const other = state.cards.get(node.dataset.job);
    return other && other.frame.job.created_at > created;
  });
  container.insertBefore(entry.el, after || null);
}

function setImages(job, images) {
  const entry = state.cards.get(job.id);
  if (!entry) {
    upsertCard({ type: "card", job, status: job.status, final: true, text: "", fraction: 1, images });
    return;
  }
  entry.images = images;
  renderCard(entry);
  scrollToEnd(false);
}

function removeCard(jobId) {
  const entry = state.cards.get(jobId);
  if (!entry) return;
  entry.el.remove();
  state.cards.delete(jobId);
}

function pendingCard(job) {
  return { type: "card", job, status: "queued", final: false, text: "Queued.", fraction: null };
}

function renderCard(entry) {
  const { frame, images } = entry;
  const job = frame.job;
  const mine = state.me && state.me.name === job.user_id;
  const avatar = el("div", { class: "avatar", text: (job.user || "?").slice(0, 1).toUpperCase() });
  avatar.style.background = `hsl(${hue(job.user_id)} 65% 55%)`;
  const kind = job.kind === "generate" ? null
    : el("span", { class: "badge", text: `${job.kind === "upscale" ? "Upscale" : "Variation"} of image ${job.source_index + 1}` });
  const head = el("header", { class: "card-head" }, avatar,
    el("div", { class: "who" },
      el("div", {}, el("strong", { text: job.user }), el("span", { class: "muted", text: ` · ${timeOf(job.created_at)} · ${job.provider}` }), kind),
      el("p", { class: "prompt", text: job.prompt })));
  const body = [head, statusLine(frame)];
  if (!frame.final || frame.status === "succeeded") body.push(progressBar(frame));
  if (images.length) body.push(resultGrid(job, images), buttons(job, images, mine));
  else if (frame.preview) {
    const hidden = isHidden(job);
    body.push(el("img", { class: hidden ? "preview flagged" : "preview", src: frame.preview, alt: "preview",
      title: hidden ? SENSITIVE : null, onclick: () => reveal(job, entry) }));
  }
  if (!frame.final) {
    body.push(el("div", { class: "actions" },
      el("button", { class: "ghost small", type: "button", text: "✕ Cancel", onclick: () => act(job.id, "cancel") })));
  }
  entry.el.className = `card status-${frame.status}`;
  entry.el.replaceChildren(...body);
}

function statusLine(frame) {
  const cls = frame.status === "failed" ? "status error" : "status";
  return el("p", { class: cls, text: frame.text || frame.status });
}

function progressBar(frame) {
  const fraction = frame.fraction === null || frame.fraction === undefined ? 0 : frame.fraction;
  const pct = Math.round(100 * fraction);
  const fill = el("div", { class: "fill" });
  fill.style.width = `${pct}%`;
  const bar = el("div", { class: frame.status === "queued" ? "bar waiting" : "bar", role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) }, fill);
  return el("div", { class: "progress" }, bar, el("span", { class: "pct", text: `${pct} %` }));
}

// Moderation flags a job's images (NSFW where allowed): they stay blurred until clicked.
const SENSITIVE = "Sensitive: click to show";

function isHidden(job) {
  return Boolean(job.flagged) && !state.revealed.has(job.id);
}

function reveal(job, entry) {
  state.revealed.add(job.id);
  renderCard(entry || state.cards.get(job.id));
}

function resultGrid(job, images) {
  const stars = favourites();
  const hidden = isHidden(job);
  const cells = images.map((image) => {
    const key = `${job.id}:${image.index}`;
    const on = stars.has(key);
    const img = el("img", { src: image.thumb, alt: `${job.prompt} (${image.index + 1})`, loading: "lazy",
      width: image.width, height: image.height, onclick: () => (hidden ? reveal(job) : view(image.url)) });
    const star = el("button", { type: "button", class: on ? "star on" : "star", title: "Favourite",
      text: on ? "★" : "☆", onclick: () => favourite(job, [image.index], !on) });
    const veil = hidden ? el("span", { class: "veil", text: SENSITIVE }) : null;
    return el("figure", { class: hidden ? "flagged" : "" }, img, veil, el("figcaption", { text: String(image.index + 1) }), star);
  });
  return el("div", { class: images.length === 1 ? "grid single" : "grid" }, ...cells);
}

function buttons(job, images, mine) {
  const row = el("div", { class: "actions" });
  const upscalable = job.kind !== "upscale";
  if (upscalable) {
    for (const image of images) {
      row.append(el("button", { type: "button", class: "small", text: `U${image.index + 1}`, title: "Upscale",
        data: { action: "upscale", index: String(image.index) }, onclick: () => act(job.id, "upscale", { index: image.index }) }));
    }
    row.append(el("span", { class: "sep" }));
  }
  for (const image of images) {
    row.append(el("button", { type: "button", class: "small", text: `V${image.index + 1}`, title: "Variations",
      data: { action: "vary", index: String(image.index) }, onclick: () => act(job.id, "vary", { index: image.index }) }));
  }
  const stars = favourites();
  const allOn = images.every((image) => stars.has(`${job.id}:${image.index}`));
  const reactions = el("div", { class: "reactions" },
    el("button", { type: "button", class: "reaction", title: "Reroll: the same prompt with new seeds", text: "↻ Reroll",
      data: { action: "reroll" }, onclick: () => act(job.id, "reroll") }),
    el("button", { type: "button", class: allOn ? "reaction on" : "reaction", title: "Favourite all four", text: allOn ? "★ Favourited" : "☆ Favourite",
      data: { action: "favourite" }, onclick: () => favourite(job, images.map((i) => i.index), !allOn) }),
    mine ? el("button", { type: "button", class: "reaction", title: "Delete this job", text: "✕ Delete",
      data: { action: "delete" }, onclick: () => act(job.id, "delete") }) : null);
  return el("div", { class: "card-foot" }, row, reactions);
}

// --- actions ----------------------------------------------------------------------------------
async function act(jobId, action, extra = {}) {
  try {
    const reply = await api("POST", `/api/jobs/${jobId}/${action}`, { channel: state.channel, ...extra });
    showReply(reply);
  } catch (error) { toast(error.message); }
}

async function favourite(job, indexes, on) {
  const stars = favourites();
  try {
    for (const index of indexes) {
      await api("POST", `/api/jobs/${job.id}/favourite`, { channel: state.channel, index, on });
      if (on) stars.add(`${job.id}:${index}`); else stars.delete(`${job.id}:${index}`);
    }
  } catch (error) { toast(error.message); }
  saveFavourites(stars);
  const entry = state.cards.get(job.id);
  if (entry) renderCard(entry);
}

async function say(text) {
  try {
    const reply = await api("POST", `/api/channels/${encodeURIComponent(state.channel)}/say`, { text });
    showReply(reply);
    return true;
  } catch (error) { toast(error.message); return false; }
}

function showReply(reply) {
  if (reply.kind === "jobs") {
    for (const job of reply.jobs) if (!state.cards.has(job.id)) upsertCard(pendingCard(job));
  } else if (reply.kind === "deleted") {
    removeCard(reply.job_id);
  } else if (reply.kind === "note" || reply.kind === "link" || reply.kind === "list") {
    botMessage(reply);
  }
}

function botMessage(reply) {
  const parts = [el("div", { class: "avatar bot", text: "✦" })];
  const content = el("div", { class: "who" }, el("strong", { text: "imaginebot" }));
  if (reply.kind === "note") content.append(el("p", { text: reply.text }));
  if (reply.kind === "link") content.append(el("p", { text: reply.text }), el("a", { href: reply.url, text: new URL(reply.url, location.href).href }));
  if (reply.kind === "list") {
    content.append(el("p", { class: "list-title", text: reply.title }));
    if (!reply.items.length) content.append(el("p", { class: "muted", text: reply.empty }));
    content.append(el("dl", {}, ...reply.items.flatMap((item) => [el("dt", { text: item.title }), el("dd", { text: item.detail })])));
  }
  parts.push(content);
  $("#cards").append(el("article", { class: "card bot-message" }, el("header", { class: "card-head" }, ...parts)));
  scrollToEnd(true);
}

function view(url) {
  $("#viewer-img").src = url;
  $("#viewer").showModal();
}

function scrollToEnd(force) {
  const feed = $("#feed");
  const near = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 240;
  if (force || near) requestAnimationFrame(() => { feed.scrollTop = feed.scrollHeight; });
}

// --- start ------------------------------------------------------------------------------------
async function submitPrompt(event) {
  event.preventDefault();
  const box = $("#prompt");
  const text = box.value.trim();
  if (!text) return;
  $("#send").disabled = true;
  const ok = await say(text);
  $("#send").disabled = false;
  if (ok) box.value = "";
  box.focus();
}

async function start() {
  state.me = await api("GET", "/api/me");
  if (state.me.name) {
    $("#name").value = state.me.name;
    $("#name-hint").textContent = `You are ${state.me.name}.`;
  }
  updateComposer();
  $("#name-form").addEventListener("submit", saveName);
  $("#channel-form").addEventListener("submit", addChannel);
  $("#composer").addEventListener("submit", submitPrompt);
  $("#prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("#composer").requestSubmit(); }
  });
  for (const chip of document.querySelectorAll("[data-command]")) {
    chip.addEventListener("click", () => { if (state.me.name) say(chip.dataset.command); else toast("Pick a name first."); });
  }
  $("#older").addEventListener("click", () => loadCards(state.nextCursor));
  window.addEventListener("hashchange", () => openChannel(channelFromLocation()));
  const prefill = new URLSearchParams(location.search).get("prompt");
  if (prefill) $("#prompt").value = prefill;
  await openChannel(channelFromLocation());
  (state.me.name ? $("#prompt") : $("#name")).focus();
}

start().catch((error) => toast(error.message));
