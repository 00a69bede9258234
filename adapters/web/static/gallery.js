// A channel's gallery: newest first, keyset-paged with infinite scroll, filters and a detail view.
// /c/<channel> is a playground channel; /c/<platform>/<id>?exp=..&sig=.. a chat channel's signed link.
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function where() {
  const parts = location.pathname.split("/").filter(Boolean).slice(1).map(decodeURIComponent);
  const signed = new URLSearchParams(location.search);
  if (parts.length === 1) return { platform: "web", channel: parts[0], auth: {} };
  return { platform: parts[0], channel: parts[1], auth: { exp: signed.get("exp") || "", sig: signed.get("sig") || "" } };
}

const place = where();
const state = { cursor: null, loading: false, done: false, filters: {}, generation: 0 };

async function fetchPage() {
  if (state.loading || state.done) return;
  state.loading = true;
  const generation = state.generation;
  const params = new URLSearchParams({ ...place.auth, ...state.filters });
  if (state.cursor) params.set("cursor", state.cursor);
  const path = `/api/gallery/${encodeURIComponent(place.platform)}/${encodeURIComponent(place.channel)}?${params}`;
  try {
    const response = await fetch(path);
    const data = await response.json();
    if (generation !== state.generation) return; // the filters changed while this page loaded
    if (!response.ok) throw new Error(data.error || `The server answered ${response.status}.`);
    for (const item of data.items) $("#thumbs").append(thumb(item));
    state.cursor = data.next_cursor;
    state.done = !data.next_cursor;
    $("#more").hidden = state.done;
    $("#empty").hidden = $("#thumbs").children.length > 0;
    $("#empty").textContent = "No images match.";
  } catch (error) {
    $("#empty").hidden = false;
    $("#empty").textContent = error.message;
  } finally {
    if (generation === state.generation) state.loading = false;
  }
}

// Moderation flags a job's images (NSFW where allowed): blurred until the first click shows them.
function thumb(item) {
  const { job, image } = item;
  const button = el("button", { type: "button", class: job.flagged ? "thumb flagged" : "thumb", title: job.prompt,
    "data-job": job.id, "data-index": String(image.index),
    onclick: () => (button.classList.contains("flagged") ? button.classList.remove("flagged") : detail(item)) },
    el("img", { src: image.thumb, alt: job.prompt, loading: "lazy", width: image.width, height: image.height }),
    job.flagged ? el("span", { class: "veil", text: "Sensitive: click to show" }) : null,
    el("span", { class: "caption", text: job.prompt }));
  return button;
}

function row(term, value) {
  return [el("dt", { text: term }), el("dd", { text: value === null || value === undefined || value === "" ? "—" : String(value) })];
}

function detail(item) {
  const { job, image } = item;
  $("#detail-img").src = image.url;
  $("#detail-img").alt = job.prompt;
  $("#detail-prompt").textContent = job.prompt;
  const took = job.started_at && job.finished_at ? `${(job.finished_at - job.started_at).toFixed(1)} s` : "";
  $("#detail-params").replaceChildren(...[
    ["By", job.user], ["Created", new Date(job.created_at * 1000).toLocaleString()],
    ["Seed", image.seed], ["Provider", image.provider], ["Model", image.model],
    ["Size", `${image.width} × ${image.height}`], ["Aspect", job.aspect], ["Style", job.style],
    ["Negative", job.negative_prompt], ["Cost", `$${(image.cost_usd || 0).toFixed(3)}`], ["Time", took],
    ["Kind", job.kind], ["Favourites", item.favourites], ["Revised prompt", image.revised_prompt],
    ["Job", `${job.id} · image ${image.index + 1}`], ["SHA-256", image.sha256],
  ].flatMap(([term, value]) => row(term, value)));
  $("#copy").onclick = () => copy(job.command);
  const target = place.platform === "web" ? `?c=${encodeURIComponent(place.channel)}&` : "?";
  $("#again").href = `/${target}prompt=${encodeURIComponent(job.command)}`;
  $("#original").href = image.url;
  $("#detail").showModal();
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    $("#copy").textContent = "Copied";
  } catch (_) {
    $("#copy").textContent = "Copy failed";
  }
  setTimeout(() => { $("#copy").textContent = "Copy prompt"; }, 1500);
}

function applyFilters(event) {
  if (event) event.preventDefault();
  const form = new FormData($("#filters"));
  state.filters = {};
  for (const [key, value] of form.entries()) if (String(value).trim()) state.filters[key] = String(value).trim();
  state.generation += 1;
  state.cursor = null;
  state.done = false;
  state.loading = false;
  $("#thumbs").replaceChildren();
  fetchPage();
}

async function loadProviders() {
  try {
    const me = await (await fetch("/api/me")).json();
    for (const name of me.providers) $("#provider").append(el("option", { value: name, text: name }));
  } catch (_) { /* the filter still works by typing nothing */ }
}

function start() {
  const label = place.platform === "web" ? `# ${place.channel}` : `# ${place.channel}`;
  $("#title").replaceChildren(document.createTextNode(label),
    place.platform === "web" ? el("span", { class: "platform", text: "playground" }) : el("span", { class: "platform", text: place.platform }));
  document.title = `${label} gallery · imaginebot`;
  if (place.platform === "web") $("#home").href = `/#c=${encodeURIComponent(place.channel)}`;
  $("#filters").addEventListener("submit", applyFilters);
  let timer = null;
  $("#q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(applyFilters, 300); });
  for (const id of ["#provider", "#since", "#until"]) $(id).addEventListener("change", () => applyFilters());
  $("#more").addEventListener("click", fetchPage);
  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) fetchPage();
  }, { rootMargin: "600px" }).observe($("#sentinel"));
  loadProviders();
  fetchPage();
}

start();
