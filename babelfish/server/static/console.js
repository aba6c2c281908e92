// The operator console: Live (rooms, legs, captions, actions), Calls (stored transcripts), Health (latency
// plots drawn as SVG from /console/api/health), Glossary (the operator's terms and names). No framework and no build step; the session cookie set at
// login goes with every request (same origin), so no credential is ever kept by this script.
"use strict";

const state = window.babelfishConsole = {
  view: "live", rooms: [], captions: {}, calls: [], total: 0, offset: 0, q: "", transcript: null,
  health: null, captionsOpen: false, lastLink: null, busy: 0,
};
const $ = (selector, root = document) => root.querySelector(selector);
const PAGE = 20;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

// -- progress and errors: every request the console starts shows what it is doing until it is done --------
const running = new Map();
function progress() {
  $("#progress").textContent = [...running.values()].at(-1) || "";
}
// body: JSON, or with contentType the request's text as it is (a CSV)
async function api(path, { method = "GET", body, contentType, label } = {}) {
  const key = Symbol(path);
  if (label) { running.set(key, label); progress(); }
  state.busy += 1;
  try {
    const response = await fetch(path, {
      method, credentials: "same-origin",
      headers: body !== undefined ? { "Content-Type": contentType || "application/json" } : {},
      body: body !== undefined ? (contentType ? body : JSON.stringify(body)) : undefined,
    });
    if (response.status === 401) { location.reload(); throw new Error("logged out"); }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    $("#error").textContent = "";
    return data;
  } catch (error) {
    $("#error").textContent = error.message;
    throw error;
  } finally {
    state.busy -= 1;
    running.delete(key); progress();
  }
}
async function withButton(button, label, work) {
  const text = button.textContent;
  button.disabled = true; button.textContent = label;
  try { return await work(); } catch (error) { return null; } finally { button.disabled = false; button.textContent = text; }
}

const clock = (s) => { s = Math.max(0, Math.round(s)); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; };
const when = (epoch) => epoch ? new Date(epoch * 1000).toLocaleString() : "–";

// -- tabs -------------------------------------------------------------------------------------------------
for (const tab of document.querySelectorAll("nav [data-view]")) {
  tab.addEventListener("click", () => show(tab.dataset.view));
}
function show(view) {
  state.view = view;
  for (const tab of document.querySelectorAll("nav [data-view]")) tab.setAttribute("aria-selected", tab.dataset.view === view);
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== view;
  if (view === "calls") loadCalls();
  if (view === "health") loadHealth();
  if (view === "glossary") loadGlossary();
}

// -- Live -------------------------------------------------------------------------------------------------
async function refreshLive() {
  try {
    const live = await api("/console/api/live");
    state.rooms = live.rooms;
    renderRooms();
  } catch (error) { /* shown in #error */ }
}

function renderRooms() {
  const box = $("#rooms");
  box.replaceChildren();
  if (!state.rooms.length) box.append(el("div", { class: "card empty", id: "no-rooms" }, "No calls right now."));
  for (const room of state.rooms) {
    const legs = el("table", {}, el("thead", {}, el("tr", {}, ["leg", "caller", "language", "connected for", "mode", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, room.legs.map((leg) => el("tr", { "data-leg": leg.id },
        el("td", {}, leg.id.slice(0, 8)), el("td", {}, leg.caller), el("td", {}, leg.language),
        el("td", {}, leg.connected ? clock(leg.for_s) : "connecting"), el("td", {}, `${leg.mode}${leg.direction === "outbound" ? " (invited)" : ""}`),
        el("td", {}, leg.role === "interpreter" ? handOverButton(leg) : "",
          el("button", { class: "danger end-leg", onclick: (e) => endLeg(e.target, leg.id) }, "End leg"))))));
    const language = el("select", { class: "link-language" }, ["en-GB", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL"].map((t) => el("option", { value: t }, t)));
    const linkBox = el("div", { class: "link", hidden: !(state.lastLink && state.lastLink.room === room.code) }, state.lastLink?.room === room.code ? state.lastLink.url : "");
    const captions = el("ul", { class: "captions" }, (state.captions[room.id] || []).map(captionItem));
    const invited = state.lastInterpreter?.room === room.id ? state.lastInterpreter : null;
    const interpreterBox = el("div", { class: "link interpreter-invitation", hidden: !invited },
      invited ? `Interpreter (${invited.languages.join(" ↔ ")}), once, until ${new Date(invited.expires * 1000).toLocaleTimeString()}: `
        + `dial ${invited.number || "the service number"} and type ${invited.keys} at the room menu, or open ${invited.url}` : "");
    const waiting = (room.interpreter_invitations || []).length;
    box.append(el("div", { class: "card room", "data-room": room.id },
      el("h2", {}, `Room ${room.code || room.id.slice(0, 12)}`, el("small", {}, `${room.legs.length} of ${room.capacity} legs`),
        el("button", { class: "danger end-room", onclick: (e) => endRoom(e.target, room.id) }, "End room"),
        room.code ? el("span", {}, language, " ", el("button", { class: "quiet issue-link", onclick: (e) => issueLink(e.target, room.code, language.value) }, "Join link")) : "",
        el("button", { class: "quiet request-interpreter", onclick: (e) => requestInterpreter(e.target, room.id) },
          waiting ? `Interpreter (${waiting} invited)` : "Interpreter")),
      legs, linkBox, interpreterBox, captions.children.length ? captions : el("p", { class: "empty" }, "Captions appear here as people speak.")));
  }
}

// languages.detect: the language an utterance was heard in, and how sure (nothing when not identified)
function identified(confidence) {
  return typeof confidence === "number" ? `, heard ${Math.round(confidence * 100)} % sure` : "";
}

function captionItem(c) {
  return el("li", { class: c.final ? "final" : "partial" },
    el("div", { class: "who" }, `${c.leg.slice(0, 8)} · ${c.language}${identified(c.confidence)}${c.final ? "" : " · speaking"}`),
    el("div", {}, c.text), c.translation ? el("div", { class: "translation" }, `→ ${c.target || ""} ${c.translation}`) : "",
    ...(c.skipped || []).map((s) => el("div", { class: "skipped bad" }, `${s.listener.slice(0, 8)} (${s.target}) did not hear it: ${SKIPPED[s.reason] || s.reason}`)));
}

const SKIPPED = { late: "too late (timed out or stale)", backlog: "too much was waiting", failed: "an engine failed" };

function onCaption(event) {
  if (event.type === "skipped" && event.room) { // a listener did not hear an utterance: marked on its caption
    const list = state.captions[event.room] || [];
    const item = list.findLast((c) => c.utterance === event.utterance) || list.findLast((c) => c.leg === event.leg);
    if (item) (item.skipped = item.skipped || []).push({ listener: event.listener, target: event.target, reason: event.reason });
    if (state.view === "live") renderRooms();
    return;
  }
  if (!["partial", "final"].includes(event.type) || !event.room) return;
  const list = state.captions[event.room] = state.captions[event.room] || [];
  const last = list.at(-1);
  const item = { leg: event.leg, language: event.language, confidence: event.confidence, text: event.text || "", final: event.type === "final",
                 translation: event.translation || null, target: event.target || null, utterance: event.utterance || null };
  if (last && !last.final && last.leg === item.leg) list[list.length - 1] = item; else list.push(item);
  if (list.length > 50) list.splice(0, list.length - 50);
  if (state.view === "live") renderRooms();
}

function openCaptions() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/api/captions`;
  const ws = new WebSocket(url);
  ws.onopen = () => { state.captionsOpen = true; };
  ws.onmessage = (message) => onCaption(JSON.parse(message.data));
  ws.onclose = () => { state.captionsOpen = false; setTimeout(openCaptions, 2000); };
}

async function endLeg(button, id) {
  await withButton(button, "Ending…", () => api(`/console/api/legs/${encodeURIComponent(id)}/end`, { method: "POST", label: "Ending the leg…" }));
  await refreshLive();
}
async function endRoom(button, id) {
  await withButton(button, "Ending…", () => api(`/console/api/rooms/${encodeURIComponent(id)}/end`, { method: "POST", label: "Ending the room…" }));
  await refreshLive();
}
// interpreters (docs/interpreters.md): an invitation for the room's two languages, shown once; hand over, take back
function handOverButton(leg) {
  const action = leg.handed_over ? "take-back" : "hand-over";
  return el("button", { class: `quiet ${action}`, disabled: !leg.connected && !leg.handed_over,
    title: `interprets ${leg.interprets.join(" ↔ ")}`, onclick: (e) => handOver(e.target, leg.id, action) },
    leg.handed_over ? "Take back" : "Hand over");
}
async function requestInterpreter(button, room) {
  const invitation = await withButton(button, "Inviting…", () => api(`/console/api/rooms/${encodeURIComponent(room)}/interpreters`, { method: "POST", body: {}, label: "Inviting an interpreter…" }));
  if (invitation) { state.lastInterpreter = invitation; renderRooms(); }
}
async function handOver(button, leg, action) {
  await withButton(button, action === "hand-over" ? "Handing over…" : "Taking back…", () => api(`/console/api/legs/${encodeURIComponent(leg)}/${action}`, { method: "POST", label: action === "hand-over" ? "Handing the call to the interpreter…" : "Taking the call back…" }));
  await refreshLive();
}
async function issueLink(button, room, language) {
  const link = await withButton(button, "Issuing…", () => api("/console/api/links", { method: "POST", body: { room, language }, label: "Issuing a join link…" }));
  if (link) { state.lastLink = link; renderRooms(); }
}

// -- Calls ------------------------------------------------------------------------------------------------
async function loadCalls() {
  const params = new URLSearchParams({ limit: PAGE, offset: state.offset, q: state.q });
  const data = await api(`/console/api/calls?${params}`, { label: state.q ? `Searching for “${state.q}”…` : "Loading calls…" }).catch(() => null);
  if (!data) return;
  state.calls = data.calls; state.total = data.total;
  $("#calls-count").textContent = `${data.total} call${data.total === 1 ? "" : "s"}${state.q ? ` mention${data.total === 1 ? "s" : ""} “${state.q}”` : ""}`;
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = state.offset + PAGE >= state.total;
  $("#call-rows").replaceChildren(...(data.calls.length ? data.calls.map((call) => el("tr", { "data-call": call.id, style: "cursor:pointer", onclick: () => openCall(call.id) },
    el("td", {}, when(call.started_at)), el("td", {}, call.room || "–"),
    el("td", {}, call.legs.map((leg) => `${leg.number} (${leg.language})`).join(", ")),
    el("td", {}, String(call.utterances)), el("td", {}, call.ended_at ? clock(call.ended_at - call.started_at) : "live"))) : [el("tr", {}, el("td", { colspan: 5, class: "empty" }, "No calls."))]));
}
$("#search-button").addEventListener("click", () => { state.q = $("#q").value.trim(); state.offset = 0; loadCalls(); });
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadCalls(); });
$("#next").addEventListener("click", () => { state.offset += PAGE; loadCalls(); });

async function openCall(id) {
  const call = await api(`/console/api/calls/${encodeURIComponent(id)}`, { label: "Opening the transcript…" }).catch(() => null);
  if (!call) return;
  state.transcript = call;
  const first = call.legs[0]?.leg_id;
  const box = $("#transcript");
  box.hidden = false;
  box.replaceChildren(
    el("h2", {}, `Call ${call.id.slice(0, 12)}`, el("small", {}, `${when(call.started_at)} · room ${call.room || "–"}`),
      ...["json", "txt", "srt", "vtt"].map((fmt) => el("button", { class: "quiet download", "data-format": fmt, onclick: (e) => download(e.target, call.id, fmt) }, fmt.toUpperCase()))),
    ...[...call.utterances.filter((u) => u.source_text).map((u) => [u.started_at, el("div", { class: `turn ${u.leg_id === first ? "a" : "b"}` },
      el("div", { class: "who" }, `${clock(u.started_at - call.started_at)} · ${u.number} (${u.language}${identified(u.language_confidence)})`
        + (u.latencies.first_frame !== undefined ? ` · heard ${u.latencies.first_frame.toFixed(2)} s after they stopped` : "")),
      el("div", {}, u.source_text),
      ...Object.entries(u.translations).map(([lang, text]) => el("div", { class: "translation" }, `→ ${lang}: ${text}`)))]),
      ...(call.events || []).map((e) => [e.at, el("div", { class: "call-event" }, `${clock(e.at - call.started_at)} · ${EVENTS[e.kind] || e.kind} (${e.detail})`)])]
      .sort((a, b) => a[0] - b[0]).map(([, node]) => node),
  );
}

const EVENTS = { interpreter_joined: "an interpreter joined", interpreter_left: "the interpreter left",
                 handed_over: "handed over to the interpreter", taken_back: "taken back from the interpreter" };

async function download(button, id, fmt) {
  await saveAs(button, `/console/api/calls/${encodeURIComponent(id)}?format=${fmt}&download=1`, `${id}.${fmt}`,
    `Preparing the ${fmt.toUpperCase()} download…`);
}

// fetches path (with the session cookie) and hands it to the browser as a download named filename
async function saveAs(button, path, filename, label) {
  await withButton(button, "Preparing…", async () => {
    running.set(button, label); progress();
    try {
      const response = await fetch(path, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`download failed: ${response.status}`);
      const url = URL.createObjectURL(await response.blob());
      const a = el("a", { href: url, download: filename });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      state.downloaded = (state.downloaded || 0) + 1;
    } finally { running.delete(button); progress(); }
  });
}

// -- Health -----------------------------------------------------------------------------------------------
const STAGES = [["end_of_turn", "end of turn"], ["recognize", "recognize"], ["translate", "translate"],
                ["synthesize", "synthesize"], ["first_frame", "end of speech → first frame"]];

async function loadHealth() {
  const health = await api("/console/api/health", { label: "Loading the last hour's figures…" }).catch(() => null);
  if (!health) return;
  state.health = health;
  const plots = [...STAGES.map(([key, title]) => plot(title, health.minutes, [
      { label: "p50", color: "#2856d8", values: health.minutes.map((m) => m.stages[key]?.p50 ?? null) },
      { label: "p90", color: "#a86400", values: health.minutes.map((m) => m.stages[key]?.p90 ?? null) }], "s", key)),
    plot("utterances per minute", health.minutes, [{ label: "utterances", color: "#1b8a4b", bars: true, values: health.minutes.map((m) => m.utterances) }], "", "utterances")];
  $("#plots").replaceChildren(...plots);
  const errors = Object.entries(health.errors);
  $("#errors").replaceChildren(...(errors.length ? errors.map(([kind, n]) => el("tr", {}, el("td", {}, kind), el("td", {}, String(n))))
    : [el("tr", {}, el("td", { class: "empty" }, "none"))]));
  const ready = health.ready;
  const rows = [["ready", ready.ready], ["engines", ready.engines === "loaded"], ["draining", !ready.draining]];
  for (const [name, depend] of Object.entries(ready.depends || {})) rows.push([name, depend.ok]);
  $("#ready").replaceChildren(...rows.map(([name, ok]) => el("tr", {}, el("td", {}, name),
    el("td", { class: ok ? "ok" : "bad" }, name === "draining" ? (ok ? "no" : "yes") : (ok ? "ok" : "not ready")))));
  $("#languages tbody").replaceChildren(...(health.languages || []).map((l) => el("tr", { "data-language": l.language },
    el("td", {}, `${l.name} (${l.language})`),
    el("td", { class: l.rating === "poor" ? "bad" : l.offered ? "ok" : "" }, l.rating),
    el("td", {}, l.in_menu ? "yes" : "no"), el("td", {}, l.voice), el("td", {}, l.reasons.join("; ")))));
}

// A small SVG chart: one series or two, minutes on x (the last hour), gaps where a minute had no utterance.
function plot(title, minutes, series, unit, key) {
  const W = 330, H = 150, L = 34, B = 18, T = 8, R = 8;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null);
  const top = Math.max(unit ? 0.5 : 2, ...values) * 1.1;
  const x = (i) => L + (i / Math.max(1, minutes.length - 1)) * (W - L - R);
  const y = (v) => H - B - (v / top) * (H - B - T);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("data-plot", key);
  svg.setAttribute("data-points", String(values.length));
  const add = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); return n; };
  for (const f of [0, 0.5, 1]) {
    add("line", { x1: L, x2: W - R, y1: y(top / 1.1 * f), y2: y(top / 1.1 * f), stroke: "#e3e6ec" });
    add("text", { x: 2, y: y(top / 1.1 * f) + 4, "font-size": 10, fill: "#687085" }, `${(top / 1.1 * f).toFixed(unit ? 2 : 0)}${unit}`);
  }
  add("text", { x: L, y: H - 4, "font-size": 10, fill: "#687085" }, "60 min ago");
  add("text", { x: W - R - 24, y: H - 4, "font-size": 10, fill: "#687085" }, "now");
  for (const s of series) {
    if (s.bars) {
      s.values.forEach((v, i) => { if (v) add("rect", { x: x(i) - 2, y: y(v), width: 4, height: H - B - y(v), fill: s.color }); });
      continue;
    }
    let d = "";
    s.values.forEach((v, i) => { if (v === null) return; d += `${d && s.values[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`; });
    add("path", { d, fill: "none", stroke: s.color, "stroke-width": 2 });
    s.values.forEach((v, i) => { if (v !== null) add("circle", { cx: x(i), cy: y(v), r: 2.5, fill: s.color }); });
  }
  const legend = el("div", { class: "legend" }, series.map((s) => [el("i", { style: `background:${s.color}` }), s.label]));
  return el("div", { class: "plot" }, el("h3", {}, title), svg, legend);
}

// -- Glossary ---------------------------------------------------------------------------------------------
// The operator's glossary (docs/glossary.md). Every field is set as text (el), never as markup. filter: "*"
// every entry, "" the server-wide ones, else a room code; rooms: the codes seen, for the filter.
const glossary = state.glossary = { terms: [], rooms: [], filter: "*", editing: null, max: 0, loaded: false };
const GLOSSARY_FIELDS = ["kind", "language", "term", "target_language", "target_term", "room"];

async function loadGlossary() {
  const query = glossary.filter === "*" ? "" : `?${new URLSearchParams({ room: glossary.filter })}`;
  const data = await api(`/console/api/glossary${query}`, { label: "Loading the glossary…" }).catch(() => null);
  if (!data) return;
  if (!glossary.loaded) {
    $("#gl-languages").replaceChildren(...Object.entries(data.languages).map(([tag, name]) => el("option", { value: tag }, name)));
    glossary.loaded = true;
  }
  glossary.terms = data.terms; glossary.max = data.max;
  knowRooms(data.terms.map((t) => t.room));
  renderGlossary();
}

function knowRooms(rooms) {
  glossary.rooms = [...new Set([...glossary.rooms, ...rooms.filter(Boolean)])].sort();
  $("#gl-filter").replaceChildren(el("option", { value: "*" }, "all"), el("option", { value: "" }, "server-wide"),
    ...glossary.rooms.map((room) => el("option", { value: room }, room)));
  $("#gl-filter").value = glossary.filter;
}

function renderGlossary() {
  const n = glossary.terms.length;
  const where = glossary.filter === "*" ? "" : glossary.filter ? ` in room ${glossary.filter}` : " server-wide";
  $("#glossary-count").textContent = `${n} ${n === 1 ? "entry" : "entries"}${where} (at most ${glossary.max} in all)`;
  $("#glossary-rows").replaceChildren(...(n ? glossary.terms.map((t) => glossary.editing === t.id ? editRow(t) : termRow(t))
    : [el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No entries."))]));
}

function termRow(t) {
  const name = t.kind === "name";
  return el("tr", { "data-term": t.id },
    el("td", {}, t.kind), el("td", {}, name ? "every language" : `${t.language} ↔ ${t.target_language}`),
    el("td", {}, t.term), el("td", {}, name ? "kept as written" : t.target_term), el("td", {}, t.room || "server-wide"),
    el("td", { style: "white-space:nowrap" },
      el("button", { class: "quiet gl-edit", onclick: () => { glossary.editing = t.id; renderGlossary(); } }, "Edit"), " ",
      el("button", { class: "danger gl-delete", onclick: (e) => removeTerm(e.target, t.id) }, "Delete")));
}

function editRow(t) {
  const input = (field, size) => el("input", { name: field, value: t[field], size, "aria-label": field.replace("_", " "),
    list: field.endsWith("language") ? "gl-languages" : undefined });
  const kind = el("select", { name: "kind", "aria-label": "kind" }, ["term", "name"].map((k) => el("option", { value: k, selected: k === t.kind }, k)));
  return el("tr", { "data-term": t.id, class: "editing" },
    el("td", {}, kind), el("td", {}, input("language", 4), " ↔ ", input("target_language", 4)),
    el("td", {}, input("term", 18)), el("td", {}, input("target_term", 18)), el("td", {}, input("room", 10)),
    el("td", { style: "white-space:nowrap" },
      el("button", { class: "gl-save", onclick: (e) => saveTerm(e.target, t.id) }, "Save"), " ",
      el("button", { class: "quiet gl-cancel", onclick: () => { glossary.editing = null; renderGlossary(); } }, "Cancel")));
}

function fieldsOf(root, named) {
  return Object.fromEntries(GLOSSARY_FIELDS.map((field) => [field, named(root, field).value.trim()]));
}

async function addTerm(button) {
  const entry = fieldsOf($("#gl-form"), (root, field) => $(`#gl-${field.replace("_", "-")}`, root));
  if (entry.kind === "name") { entry.language = ""; entry.target_language = ""; entry.target_term = ""; }
  const added = await withButton(button, "Adding…", () => api("/console/api/glossary", { method: "POST", body: entry, label: "Adding to the glossary…" }));
  if (!added) return;
  $("#gl-term").value = ""; $("#gl-target-term").value = "";
  knowRooms([added.room]);
  await loadGlossary();
}

async function saveTerm(button, id) {
  const row = button.closest("tr");
  const entry = fieldsOf(row, (root, field) => $(`[name=${field}]`, root));
  const saved = await withButton(button, "Saving…", () => api(`/console/api/glossary/${id}`, { method: "PUT", body: entry, label: "Saving the entry…" }));
  if (!saved) return;
  glossary.editing = null;
  knowRooms([saved.room]);
  await loadGlossary();
}

async function removeTerm(button, id) {
  const removed = await withButton(button, "Deleting…", () => api(`/console/api/glossary/${id}`, { method: "DELETE", label: "Deleting the entry…" }));
  if (removed) await loadGlossary();
}

async function importGlossary(button) {
  const file = $("#gl-file").files[0];
  if (!file) { $("#error").textContent = "Choose a CSV file to import first."; return; }
  const replace = $("#gl-replace").checked ? 1 : 0;
  const done = await withButton(button, "Importing…", async () => api(`/console/api/glossary.csv?replace=${replace}`,
    { method: "POST", body: await file.text(), contentType: "text/csv", label: `Importing ${file.name}…` }));
  if (!done) return;
  $("#gl-file").value = "";
  await loadGlossary();
  $("#glossary-count").textContent += ` · imported ${done.imported} from ${file.name}`;
}

function showKind() {
  for (const node of document.querySelectorAll("#gl-form .gl-pair")) node.hidden = $("#gl-kind").value === "name";
}
$("#gl-kind").addEventListener("change", showKind);
$("#gl-add").addEventListener("click", (e) => addTerm(e.target));
$("#gl-filter").addEventListener("change", () => { glossary.filter = $("#gl-filter").value; glossary.editing = null; loadGlossary(); });
$("#gl-import").addEventListener("click", (e) => importGlossary(e.target));
$("#gl-export").addEventListener("click", (e) => {
  const room = glossary.filter;
  saveAs(e.target, `/console/api/glossary.csv${room === "*" ? "" : `?${new URLSearchParams({ room })}`}`,
    room === "*" ? "glossary.csv" : `glossary-${room || "server-wide"}.csv`, "Preparing the glossary's CSV…");
});

// -- start ------------------------------------------------------------------------------------------------
openCaptions();
refreshLive();
setInterval(() => { if (state.view === "live") refreshLive(); }, 2000);
setInterval(() => { if (state.view === "health") loadHealth(); }, 15000);
state.ready = true;
