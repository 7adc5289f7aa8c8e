import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, ME, PEER, deferred, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;

test("messages lists delivered rows in seq order, then sending and failed rows; onChange gets fresh arrays", async () => {
  const held = deferred();
  const env = await setup({
    routes: {
      "POST /api/messages/send": [{ status: 422, body: { success: false, error: { code: "invalid_field", message: "x" } } }, held.promise],
    },
  });
  const { conversation, changes } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  env.channel().emit("new-message", msg(2));
  env.channel().emit("new-message", msg(1));
  await assert.rejects(env.client.send(PEER, "bad", { conversationId: CONV }));
  const pending = env.client.send(PEER, "pending", { conversationId: CONV });
  env.channel().emit("new-message", msg(3));
  assert.deepEqual(
    conversation.messages.map((r) => [r.seq, r.state, r.mine]),
    [
      [1, "received", false],
      [2, "received", false],
      [3, "received", false],
      [null, "failed", true],
      [null, "sending", true],
    ],
  );
  assert.notEqual(changes.at(-1), changes.at(-2));
  assert.notEqual(conversation.messages, conversation.messages);
  assert.throws(() => {
    "use strict";
    changes.at(-1)[0].state = "x";
  }, TypeError);
  const stats = env.client.stats;
  assert.equal(stats.delivered, 3);
  assert.equal(stats.events, 2 + 1);
  stats.delivered = 99;
  assert.equal(env.client.stats.delivered, 3, "stats is a copy");
  env.client.close();
  await assert.rejects(pending, (err) => err.code === "closed");
});

test("close() unsubscribes, disconnects, aborts requests, rejects pending sends and leaves no timer", async () => {
  const held = deferred();
  const env = await setup({
    routes: { "POST /api/messages/send": [held.promise], "GET /api/conversations/messages": [{ body: page([]) }, held.promise] },
  });
  const { delivered } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  env.channel().emit("new-message", msg(2)); // a gap: a fetch is now in flight
  const sending = env.client.send(PEER, "hi", { conversationId: CONV });
  env.pusher.connection.setState("unavailable"); // polling timer running
  const channel = env.channel();
  env.client.close();
  await assert.rejects(sending, (err) => err.code === "closed");
  assert.deepEqual(env.pusher.unsubscribed, [CHANNEL]);
  assert.equal(env.pusher.disconnected, true);
  assert.equal(env.clock.pending, 0, "no timer left");
  assert.equal(env.fetch.history().at(-1).signal.aborted, true, "the gap fetch");
  assert.equal(env.fetch.to("POST", "/api/messages/send")[0].signal.aborted, true, "the send");
  for (const event of ["new-message", "message-received", "pusher:subscription_succeeded"]) {
    assert.equal(channel.count(event), 0, `${event} unbound`);
  }
  channel.emit("new-message", msg(1));
  await env.clock.tick(10_000);
  assert.deepEqual(delivered, []);
  assert.equal(env.pusher.connection.count("state_change"), 0);
  assert.throws(() => env.client.open(CONV), /closed/);
  await assert.rejects(env.client.send(PEER, "x"), (err) => err.code === "closed");
  env.client.close(); // twice is fine
});

test("conversation.close() leaves the others open and stops polling when none is left", async () => {
  const env = await setup({ pollIntervalMs: 500 });
  const a = openRecorded(env.client, { id: CONV });
  const b = openRecorded(env.client, { id: CONV + 1 });
  env.pusher.connection.setState("unavailable");
  await settle();
  assert.equal(env.client.stats.polls, 2);
  a.conversation.close();
  assert.deepEqual(env.pusher.unsubscribed, [CHANNEL]);
  await env.clock.tick(500);
  assert.equal(env.client.stats.polls, 3);
  assert.deepEqual(
    env.fetch.history().at(-1).path,
    `/api/conversations/${CONV + 1}/messages`,
  );
  b.conversation.close();
  assert.equal(env.clock.pending, 0);
  const reopened = env.client.open(CONV);
  assert.equal(reopened.id, CONV);
  env.client.close();
  assert.equal(env.clock.pending, 0);
});

test("opening a conversation twice is refused; bad ids are rejected", async () => {
  const env = await setup();
  env.client.open(CONV);
  assert.throws(() => env.client.open(CONV), /already open/);
  assert.throws(() => env.client.open(0), TypeError);
  assert.throws(() => env.client.open(CONV + 1, { afterSeq: -1 }), TypeError);
  env.client.close();
});

test("a throwing onMessage does not stop delivery and is reported to onError", async () => {
  const env = await setup();
  const errors = [];
  const seen = [];
  env.client.open(CONV, {
    onMessage: (m) => {
      seen.push(m.seq);
      if (m.seq === 1) throw new Error("ui bug");
    },
    onError: (e) => errors.push(e.message),
  });
  await env.pusher.subscribeOk(CHANNEL);
  env.channel().emit("new-message", msg(1));
  env.channel().emit("new-message", msg(2, { senderId: ME, recipientId: PEER }));
  assert.deepEqual(seen, [1, 2]);
  assert.deepEqual(errors, ["ui bug"]);
  env.client.close();
});

test("connectionState and socketId reflect pusher's connection", async () => {
  const env = await setup();
  assert.equal(env.client.connectionState, "initialized");
  assert.equal(env.client.socketId, null);
  env.pusher.connection.setState("connected");
  assert.equal(env.client.connectionState, "connected");
  assert.equal(env.client.socketId, env.pusher.connection.socket_id);
  env.client.close();
});
