// The memory inspector: a plain page over the admin JSON API (/admin/api/...).
// The admin token stays in this tab's sessionStorage and goes out as a bearer token; every
// value from the server is put on the page as text (textContent), never as HTML.
"use strict";

const API = {
  bots: () => "/admin/api/bots",
  search: (q) => `/admin/api/users?q=${encodeURIComponent(q)}`,
  user: (id) => `/admin/api/users/${encodeURIComponent(id)}`,
  key: (id, key) => `/admin/api/users/${encodeURIComponent(id)}/memory/${encodeURIComponent(key)}`,
  memories: (id) => `/admin/api/users/${encodeURIComponent(id)}/memories`,
  memory: (id, memoryId) =>
    `/admin/api/users/${encodeURIComponent(id)}/memories/${encodeURIComponent(memoryId)}`,
  forget: (id) => `/admin/api/users/${encodeURIComponent(id)}`,
  forgetMethod: "DELETE",
  export: (id) => `/admin/api/users/${encodeURIComponent(id)}/export`,
  prompt: () => "/admin/api/prompt",
  recall: (id, q, limit) =>
    `/admin/api/users/${encodeURIComponent(id)}/recall?q=${encodeURIComponent(q)}&limit=${encodeURIComponent(limit)}`,
};
const TOKEN_KEY = "mnemobot.adminToken";
const $ = (id) => document.getElementById(id);
let current = null; // the user id shown

function notice(text, isError = false) {
  const box = $("notice");
  box.textContent = text;
  box.className = isError ? "error" : "";
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { /* empty or not JSON */ }
  if (!response.ok) {
    const message = (data && data.error) || `HTTP ${response.status}`;
    if (response.status === 401 || response.status === 403) signOut(`Token refused: ${message}`);
    throw new ApiError(response.status, message);
  }
  return data;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function json(value) { return JSON.stringify(value); }

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    if (cell instanceof Node) { const td = document.createElement("td"); td.append(cell); tr.append(td); }
    else tr.append(el("td", cell));
  }
  return tr;
}

function fillTable(id, rows, emptyText) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = el("td", emptyText, "empty");
    td.colSpan = $(id).querySelectorAll("thead th").length;
    tr.append(td);
    body.append(tr);
  }
  for (const r of rows) body.append(r);
}

// -- signing in ----------------------------------------------------------------------------

function showSignedIn(yes) {
  $("sign-in").hidden = yes;
  $("search").hidden = !yes;
  $("sign-out").hidden = !yes;
  if (!yes) $("person").hidden = true;
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignedIn(false);
  if (message) notice(message, true);
  $("token").focus();
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const listing = await api(API.bots());
    const select = $("prompt-bot");
    select.replaceChildren(...listing.bots.map((b) => new Option(b.name, b.name)));
    showSignedIn(true);
    notice("Signed in. Find a person by name, e-mail, id or account.");
    $("query").focus();
  } catch (error) {
    if (!(error instanceof ApiError && (error.status === 401 || error.status === 403))) {
      notice(`Could not reach the admin API: ${error.message}`, true);
    }
  }
}

// -- finding a person ------------------------------------------------------------------------

async function search(q) {
  const answer = await api(API.search(q));
  const list = $("results");
  list.replaceChildren();
  if (!answer.users.length) {
    list.append(el("li", `Nobody matches “${q}”.`, "hint"));
    return;
  }
  for (const user of answer.users) {
    const accounts = user.identities.map((i) => `${i.kind}:${i.external_id}`).join(", ");
    const button = el("button", `${user.name || user.display_name || "(no name)"} — ${accounts || "no accounts"}`);
    button.type = "button";
    button.dataset.userId = user.id;
    button.addEventListener("click", () => open(user.id));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  }
}

// -- one person --------------------------------------------------------------------------------

function nameOf(detail) {
  // The name the bots learned (the API's "name") beats a platform's display name (a web
  // visitor's is its id).
  return detail.user.name || detail.user.display_name || detail.user.id;
}

function summaryState(session) {
  // An ended session's summary: pending until the episode worker has run on it.
  const summary = session.summary;
  if (!session.ended_at || !summary) return "";
  if (summary.status === "pending" || summary.status === "running") return " — summary pending";
  if (summary.status === "skipped") return ` — no summary (${summary.reason || "skipped"})`;
  if (summary.status === "failed") return ` — summary failed (${summary.reason || "?"})`;
  return " — summarised";
}

function render(detail) {
  const user = detail.user;
  $("person-title").textContent = `Person: ${nameOf(detail)}`;
  const summary = $("person-facts");
  summary.replaceChildren();
  for (const [label, value] of [
    ["User id", user.id], ["Display name", user.display_name || "—"],
    ["E-mail", user.email || "—"], ["Language (platform)", user.language || "—"],
    ["First seen", when(user.created_at)],
  ]) { summary.append(el("dt", label), el("dd", value)); }

  fillTable("identities", detail.identities.map((i) =>
    row([i.channel_kind, el("code", i.external_id), i.display_name, when(i.created_at)])),
  "No accounts.");

  fillTable("memory", detail.memory.map((m) => {
    const edit = el("button", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit ${m.key}`);
    edit.addEventListener("click", () => startEdit(m));
    const del = el("button", "Delete", "danger");
    del.type = "button";
    del.setAttribute("aria-label", `Delete ${m.key}`);
    del.addEventListener("click", () => deleteKey(m.key));
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(edit, del);
    const tr = row([el("code", m.key), json(m.value), m.memory_type || "", m.ttl ? when(m.ttl) : "never",
      when(m.updated_at), actions]);
    tr.children[1].className = "value";
    tr.dataset.key = m.key;
    return tr;
  }), "Nothing remembered.");

  fillTable("memories", (detail.memories || []).map((m) => {
    const pick = el("input");
    pick.type = "checkbox";
    pick.value = m.id;
    pick.setAttribute("aria-label", `Select ${m.text}`);
    const edit = el("button", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit memory ${m.text}`);
    edit.addEventListener("click", () => startMemoryEdit(m));
    const del = el("button", "Delete", "danger");
    del.type = "button";
    del.setAttribute("aria-label", `Delete memory ${m.text}`);
    del.addEventListener("click", guarded(() => deleteMemories([m.id])));
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(edit, del);
    const by = m.source + (m.bot ? ` (${m.bot})` : "");
    const tr = row([pick, m.text, m.topics.join(", "), when(m.updated_at), by, actions]);
    tr.dataset.memoryId = m.id;
    return tr;
  }), "No memories.");
  newMemory();

  fillTable("facts", detail.facts.map((f) => {
    const history = f.history.map((h) => `${h.action} by ${h.source}${h.bot ? ` (${h.bot})` : ""} ${when(h.created_at)}`);
    return row([el("code", f.key), f.live ? json(f.value) : "(deleted)", f.live ? "yes" : "no",
      history.join("; ") || "—"]);
  }), "No facts.");

  const sessions = $("sessions");
  sessions.replaceChildren();
  if (!detail.sessions.length) sessions.append(el("p", "No sessions.", "hint"));
  for (const s of detail.sessions) {
    const box = el("div", undefined, "session");
    const state = s.ended_at ? `ended ${when(s.ended_at)} (${s.end_reason || "?"})` : "open";
    const heading = el("h4", `${s.channel} — active bot ${s.active_bot} — ${state}${summaryState(s)}`);
    box.dataset.sessionId = s.id;
    box.append(heading);
    const context = [...s.context.map((c) => `${c.key} = ${json(c.value)}`),
      ...s.memory.map((c) => `(session) ${c.key} = ${json(c.value)}`),
      ...(s.temp || []).map((c) => `(temp) ${c.key} = ${json(c.value)}`)];
    box.append(el("p", context.length ? `Context: ${context.join("; ")}` : "No session context.", "hint"));
    const turns = document.createElement("ol");
    turns.setAttribute("aria-label", "Recent turns");
    for (const t of s.turns) turns.append(el("li", `${t.role === "user" ? "person" : t.bot}: ${t.text}`, t.role));
    box.append(turns);
    sessions.append(box);
  }

  const episodes = $("episodes");
  episodes.replaceChildren();
  if (!detail.episodes.length) episodes.append(el("li", "No episodes yet.", "hint"));
  for (const e of detail.episodes) {
    const topics = Array.isArray(e.topics) ? e.topics.join(", ") : json(e.topics);
    episodes.append(el("li", `${when(e.created_at)} · ${e.bot}: ${e.summary} [${topics}]${e.resolution ? ` → ${e.resolution}` : ""}`));
  }
  $("person").hidden = false;
}

async function recall() {
  const answer = await api(API.recall(current, $("recall-query").value.trim(), $("recall-limit").value || 10));
  fillTable("recall", answer.results.map((r) => {
    const where = [r.bot, r.channel, r.role === "user" ? "(the person)" : r.role === "bot" ? "(the bot)" : "",
      r.key ? `key ${r.key}` : ""].filter(Boolean).join(" · ");
    const tr = row([r.kind, r.date || when(r.at), where || "—", r.text]);
    tr.dataset.kind = r.kind;
    return tr;
  }), `Nothing remembered matches “${answer.query}”.`);
}

async function open(userId) {
  current = userId;
  const detail = await api(API.user(userId));
  render(detail);
  $("prompt").textContent = "";
  if (!$("recall").dataset.for || $("recall").dataset.for !== userId) {
    $("recall").dataset.for = userId;
    $("recall").querySelector("tbody").replaceChildren();
  }
  $("person-title").scrollIntoView({ block: "start" });
}

function startEdit(memoryRow) {
  $("key-name").value = memoryRow.key;
  $("key-value").value = json(memoryRow.value);
  $("key-type").value = memoryRow.memory_type || "";
  $("key-ttl").value = "";
  $("key-value").focus();
  $("key-value").select();
}

function parseValue(text) {
  try { return JSON.parse(text); } catch (_) { return text; }
}

async function saveKey() {
  const key = $("key-name").value.trim();
  const body = { value: parseValue($("key-value").value) };
  if ($("key-type").value) body.memory_type = $("key-type").value;
  if ($("key-ttl").value) body.ttl = Number($("key-ttl").value);
  await api(API.key(current, key), { method: "PUT", body });
  notice(`Saved ${key}.`);
  await open(current);
}

async function deleteKey(key) {
  await api(API.key(current, key), { method: "DELETE" });
  notice(`Deleted ${key}.`);
  await open(current);
}

function newMemory() {
  $("memory-id").value = "";
  $("memory-text").value = "";
  $("memory-topics").value = "";
  $("memory-form-title").textContent = "Add a memory";
}

function startMemoryEdit(memory) {
  $("memory-id").value = memory.id;
  $("memory-text").value = memory.text;
  $("memory-topics").value = memory.topics.join(", ");
  $("memory-form-title").textContent = "Edit the memory";
  $("memory-text").focus();
}

async function saveMemory() {
  const id = $("memory-id").value;
  const topics = $("memory-topics").value.split(",").map((t) => t.trim()).filter(Boolean);
  const body = { memory: $("memory-text").value, topics };
  if (id) await api(API.memory(current, id), { method: "PUT", body });
  else await api(API.memories(current), { method: "POST", body });
  notice(id ? "Memory saved." : "Memory added.");
  await open(current);
}

async function deleteMemories(ids) {
  if (!ids.length) { notice("Select the memories to delete first.", true); return; }
  await api(API.memories(current), { method: "DELETE", body: { ids } });
  notice(`Deleted ${ids.length} ${ids.length === 1 ? "memory" : "memories"}.`);
  await open(current);
}

function selectedMemories() {
  return [...$("memories").querySelectorAll("tbody input[type=checkbox]:checked")].map((c) => c.value);
}

async function exportUser() {
  const document_ = await api(API.export(current));
  const blob = new Blob([JSON.stringify(document_, null, 2)], { type: "application/json" });
  const link = el("a");
  link.href = URL.createObjectURL(blob);
  link.download = `mnemobot-export-${current}.json`;
  link.click();
  URL.revokeObjectURL(link.href);
  notice("Export downloaded.");
}

async function forget() {
  const receipt = await api(API.forget(current), { method: API.forgetMethod });
  const counts = Object.entries(receipt.removed || {}).filter(([, n]) => n)
    .map(([table, n]) => `${n} ${table}`).join(", ");
  notice(`Forgotten: ${receipt.forgotten}. Removed ${counts || "nothing"}.`);
  current = null;
  $("person").hidden = true;
  $("results").replaceChildren();
  $("query").focus();
}

async function preview() {
  const answer = await api(API.prompt(), {
    method: "POST",
    body: { user: current, bot: $("prompt-bot").value, message: $("prompt-message").value || "Hello!" },
  });
  $("prompt").textContent = answer.report;
}

// -- wiring ---------------------------------------------------------------------------------

function guarded(fn) {
  return (event) => {
    if (event) event.preventDefault();
    fn().catch((error) => notice(error.message, true));
  };
}

$("token-form").addEventListener("submit", guarded(() => signIn($("token").value.trim())));
$("sign-out").addEventListener("click", () => { signOut(); notice("Signed out."); });
$("search-form").addEventListener("submit", guarded(() => search($("query").value.trim())));
$("key-form").addEventListener("submit", guarded(saveKey));
$("memory-form").addEventListener("submit", guarded(saveMemory));
$("new-memory").addEventListener("click", newMemory);
$("delete-memories").addEventListener("click", guarded(() => deleteMemories(selectedMemories())));
$("prompt-form").addEventListener("submit", guarded(preview));
$("recall-form").addEventListener("submit", guarded(recall));
$("export").addEventListener("click", guarded(exportUser));
$("forget").addEventListener("click", () => {
  $("confirm-who").textContent = $("person-title").textContent.replace(/^Person: /, "");
  $("confirm-forget").showModal();
});
$("confirm-forget").addEventListener("close", () => {
  if ($("confirm-forget").returnValue === "forget") guarded(forget)();
});

if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY));
else $("token").focus();
