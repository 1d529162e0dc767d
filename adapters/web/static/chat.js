// The web chat page: pick a bot, post messages, show replies as the event stream brings them.
// No framework and no build step; every reply carries its id, so one shown twice is dropped.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { bot: null, answering: null, source: null, seen: new Set(), maxChars: 20000 };

function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function show(kind, text, who) {
  const item = document.createElement("li");
  item.className = kind;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    item.append(label);
  }
  item.append(document.createTextNode(text));
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function setStatus(text) { $("status").textContent = text; }

// The bot now answering this conversation: the one picked, or the one it was handed to.
function answering(bot) {
  state.answering = bot;
  document.body.dataset.answering = bot;
  const option = [...$("bot").options].find((o) => o.value === state.bot);
  if (option) option.textContent = bot === state.bot ? state.bot : `${state.bot} → ${bot}`;
}

function connect(bot) {
  if (state.source) state.source.close();
  state.bot = bot;
  state.seen.clear();
  $("log").replaceChildren();
  const option = $("bot").selectedOptions[0];
  $("bot-description").textContent = option ? option.dataset.description || "" : "";
  localStorage.setItem("mnemobot.bot", bot);
  setStatus("Connecting…");
  const source = new EventSource(`/chat/api/${encodeURIComponent(bot)}/events`);
  state.source = source;
  source.addEventListener("ready", (event) => {
    const data = JSON.parse(event.data);
    $("visitor").textContent = data.visitor;
    // The open session's turns (a reload, or this bot picked again); a reconnect redraws.
    $("log").replaceChildren();
    for (const line of data.history || []) {
      if (line.role === "user") show("me", line.text, "you");
      else show("bot", line.text, line.bot);
    }
    answering(data.answering || bot);
    document.body.dataset.ready = bot;
    setStatus(data.history && data.history.length
      ? `Connected: ${state.answering} is answering.`
      : `Connected to ${state.answering}. Say hello!`);
  });
  source.addEventListener("reply", (event) => {
    const reply = JSON.parse(event.data);
    if (state.seen.has(reply.id)) return;
    state.seen.add(reply.id);
    show("bot", reply.text, reply.bot);
    answering(reply.bot);
    setStatus(`Connected: ${state.answering} is answering.`);
  });
  source.onerror = () => {
    delete document.body.dataset.ready;
    setStatus("Connection lost; reconnecting… (replies wait for you meanwhile)");
  };
}

async function post(text) {
  const response = await fetch(`/chat/api/${encodeURIComponent(state.bot)}/messages`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify({ id: newId(), text }),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
}

async function send(text) {
  if (!text.trim() || !state.bot) return;
  if (text.length > state.maxChars) {
    show("error", `That message is too long (${text.length} characters; the limit is ${state.maxChars}).`);
    return;
  }
  show("me", text, "you");
  setStatus(`${state.answering || state.bot} is thinking…`);
  try {
    await post(text);
  } catch (error) {
    show("error", `Not sent: ${error.message}`);
    setStatus("");
  }
}

async function init() {
  const me = await (await fetch("/chat/api/me", { credentials: "same-origin" })).json();
  $("visitor").textContent = me.visitor;
  const listing = await (await fetch("/chat/api/bots")).json();
  state.maxChars = listing.max_chars;
  const select = $("bot");
  for (const bot of listing.bots) {
    const option = new Option(bot.name, bot.name);
    option.dataset.description = bot.description;
    select.append(option);
  }
  const wanted = new URLSearchParams(location.search).get("bot") || localStorage.getItem("mnemobot.bot");
  if (wanted && listing.bots.some((b) => b.name === wanted)) select.value = wanted;
  select.addEventListener("change", () => connect(select.value));
  connect(select.value);

  const box = $("message");
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value;
    box.value = "";
    send(text);
    box.focus();
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("new-conversation").addEventListener("click", () => send("/end"));
  box.focus();
}

init().catch((error) => setStatus(`Could not start the chat: ${error.message}`));
