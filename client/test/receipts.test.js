import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, ME, PEER, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;

async function ready(options = {}) {
  const env = await setup(options);
  const rec = openRecorded(env.client, options.handlers);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  return {
    ...env,
    ...rec,
    emit: (event, data) => env.channel().emit(event, data),
    receipts: () => env.fetch.to("POST", "/api/messages/").filter((r) => r.path.endsWith("/receipt")),
  };
}

test("with receipts on, each message addressed to me gets exactly one receipt; mine never", async () => {
  const env = await ready({
    receipts: true,
    routes: { "GET /api/conversations/messages": [{ body: page([msg(1)]) }, { body: page([msg(1), msg(2)]) }] },
  });
  env.emit("new-message", msg(1));
  env.emit("new-message", msg(2, { senderId: ME, recipientId: PEER }));
  env.emit("new-message", msg(3));
  env.emit("new-message", msg(3));
  env.emit("pusher:subscription_succeeded", {});
  await settle();
  assert.deepEqual(
    env.receipts().map((r) => r.path),
    ["/api/messages/101/receipt", "/api/messages/103/receipt"],
  );
  assert.equal(env.receipts()[0].body, undefined, "no body");
  assert.equal(env.client.stats.receipts, 2);
  env.client.close();
});

test("a receipt is posted only after onMessage has shown the message", async () => {
  const seen = [];
  let envRef;
  const env = await ready({
    receipts: true,
    handlers: { onMessage: (m) => seen.push([m.id, envRef.receipts().length]) },
  });
  envRef = env;
  env.emit("new-message", msg(1));
  await settle();
  assert.deepEqual(seen, [[101, 0]]);
  assert.equal(env.receipts().length, 1);
  env.client.close();
});

test("receipts are off by default", async () => {
  const env = await ready();
  env.emit("new-message", msg(1));
  await settle();
  assert.equal(env.receipts().length, 0);
  env.client.close();
});

test("a failing receipt is retried once and then swallowed", async () => {
  const env = await ready({ receipts: true, routes: { "POST /api/messages/receipt": [{ status: 503 }] } });
  env.emit("new-message", msg(1));
  await env.clock.tick(1000);
  assert.equal(env.receipts().length, 2);
  assert.equal(env.client.stats.receipts, 0);
  assert.deepEqual(env.errors, []);
  assert.deepEqual(env.seqs(), [1]);
  env.client.close();
});

test("message-received marks my message received, even when it arrives before the message", async () => {
  const env = await ready();
  env.emit("new-message", msg(1, { senderId: ME, recipientId: PEER }));
  env.emit("message-received", { id: 102, conversationId: CONV, seq: 2, receivedAt: "2024-01-01T00:01:00Z" });
  env.emit("message-received", { id: 101, conversationId: CONV, seq: 1, receivedAt: "2024-01-01T00:00:30Z" });
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state, r.receivedAt]),
    [[1, "received", "2024-01-01T00:00:30Z"]],
  );
  const before = env.changes.length;
  env.emit("new-message", msg(2, { senderId: ME, recipientId: PEER }));
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state]),
    [
      [1, "received"],
      [2, "received"],
    ],
  );
  assert.equal(env.changes.length, before + 1);
  env.client.close();
});

test("message-received for someone else's message or another conversation changes nothing", async () => {
  const env = await ready();
  env.emit("new-message", msg(1));
  env.emit("new-message", msg(2, { senderId: ME, recipientId: PEER }));
  const before = env.changes.length;
  env.emit("message-received", { id: 101, conversationId: CONV, seq: 1, receivedAt: "x" });
  env.emit("message-received", { id: 102, conversationId: CONV + 1, seq: 2, receivedAt: "x" });
  assert.equal(env.changes.length, before);
  assert.equal(env.conversation.messages[1].state, "saved");
  env.client.close();
});
