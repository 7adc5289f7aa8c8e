// The dev chat page: one dev user (?user=1 or ?user=2) talking to the other through the
// JavaScript client in client/. The DOM carries data-testid attributes for the browser tests.
import { connect } from "/chat/client/index.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const STATE_LABEL = { sending: "sending…", saved: "saved", received: "received", failed: "not sent" };

const user = new URLSearchParams(location.search).get("user") || "1";
const config = await (await fetch(`/chat/config.json?user=${encodeURIComponent(user)}`)).json();

const client = connect({
  baseUrl: location.origin,
  token: config.token,
  userId: config.userId,
  pusher: config.pusher,
  receipts: true,
});
// for the browser tests and curious developers: the client and what it counted
window.chat = { client, config };

// Rows keep their element across changes: rebuilding every <li> on each message made a long
// conversation cost more per message than the last (the receipt benchmark saw p99 ~2 s at 500).
const elements = new Map(); // row key -> <li>
const keyOf = (message) => message.clientMessageId && message.mine
  ? `c:${message.clientMessageId}` : `m:${message.id}`;

function element() {
  const item = document.createElement("li");
  item.dataset.testid = "message";
  const text = document.createElement("span");
  text.className = "content";
  const meta = document.createElement("span");
  meta.className = "meta";
  item.append(text, meta);
  return item;
}

function update(item, message) {
  const seq = message.seq == null ? "" : String(message.seq);
  if (item.dataset.seq === seq && item.dataset.state === message.state) return;
  item.dataset.seq = seq;
  item.dataset.id = message.id ?? "";
  item.dataset.state = message.state;
  item.dataset.clientMessageId = message.clientMessageId ?? "";
  item.className = message.mine ? "mine" : "theirs";
  item.firstChild.textContent = message.content;
  item.lastChild.textContent = message.mine
    ? `#${message.seq ?? "…"} · ${STATE_LABEL[message.state] ?? message.state}`
    : `#${message.seq}`;
}

function render(messages) {
  const list = $("messages");
  const wanted = new Set();
  let previous = null;
  let grew = false;
  for (const message of messages) {
    const key = keyOf(message);
    wanted.add(key);
    let item = elements.get(key);
    if (!item) {
      item = element();
      elements.set(key, item);
      grew = true;
    }
    update(item, message);
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (item !== expected) list.insertBefore(item, expected);
    previous = item;
  }
  for (const [key, item] of elements) {
    if (!wanted.has(key)) {
      item.remove();
      elements.delete(key);
    }
  }
  if (grew) list.lastElementChild?.scrollIntoView({ block: "end" });
  showStats();
}

function showStats() {
  const counted = Object.entries(client.stats).map(([name, value]) => `${name} ${value}`);
  $("stats").textContent = `client counted: ${counted.join(" · ")}`;
}

const conversation = client.open(config.conversationId, { onChange: render });

$("who").textContent = `you are user ${config.userId}, chatting with user ${config.peerId}`;
const showConnection = () => { $("connection").textContent = client.connectionState; };
setInterval(() => { showConnection(); showStats(); }, 500);
showConnection();

const composer = $("composer");
composer.disabled = false;
$("send").disabled = false;
$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = composer.value.trim();
  if (!content) return;
  composer.value = "";
  client
    .send(config.peerId, content, { conversationId: conversation.id })
    .catch((error) => console.warn("send failed", error));
});
composer.focus();
