import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, ME, PEER, TOKEN, deferred, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// The service's answer to a send: the stored message, echoing the request's clientMessageId.
const saved = (seq, fields = {}) => (request) => ({
  body: {
    success: true,
    message: msg(seq, { senderId: ME, recipientId: PEER, content: request.body.content, clientMessageId: request.body.clientMessageId, ...fields }),
  },
});

const error = (status, code, headers = {}) => ({ status, headers, body: { success: false, error: { code, message: code } } });

async function ready(sendReplies, options = {}) {
  const env = await setup({ ...options, routes: { "POST /api/messages/send": sendReplies, ...options.routes } });
  const rec = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  return { ...env, ...rec, sends: () => env.fetch.to("POST", "/api/messages/send") };
}

test("send shows an optimistic row at once and replaces it with the saved message", async () => {
  const held = deferred();
  const env = await ready([held.promise]);
  const promise = env.client.send(PEER, "hello", { conversationId: CONV });
  const [optimistic] = env.conversation.messages;
  assert.equal(optimistic.state, "sending");
  assert.equal(optimistic.mine, true);
  assert.equal(optimistic.id, null);
  assert.equal(optimistic.seq, null);
  assert.equal(optimistic.content, "hello");
  assert.match(optimistic.clientMessageId, UUID);
  assert.equal(env.changes.length, 1, "onChange was called synchronously");
  await settle();
  const [request] = env.sends();
  assert.equal(request.headers.Authorization, `Bearer ${TOKEN}`);
  assert.deepEqual(request.body, {
    recipientId: PEER,
    content: "hello",
    clientMessageId: optimistic.clientMessageId,
    socketId: env.pusher.connection.socket_id,
  });
  held.resolve(saved(1));
  const message = await promise;
  assert.equal(message.seq, 1);
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state, r.mine, r.clientMessageId]),
    [[1, "saved", true, optimistic.clientMessageId]],
  );
  assert.deepEqual(env.seqs(), [1], "the send's answer is delivered through onMessage too");
  assert.equal(env.client.stats.sends, 1);
  env.client.close();
});

test("send retries 503 and network errors with backoff, keeping its clientMessageId", async () => {
  const env = await ready([error(503, "database_unavailable"), "network", saved(1)]);
  const promise = env.client.send(PEER, "hi", { conversationId: CONV });
  await settle();
  assert.equal(env.sends().length, 1);
  await env.clock.tick(99);
  assert.equal(env.sends().length, 1, "base delay 100 ms");
  await env.clock.tick(1);
  assert.equal(env.sends().length, 2);
  await env.clock.tick(199);
  assert.equal(env.sends().length, 2, "doubled after the second failure");
  await env.clock.tick(1);
  const message = await promise;
  const ids = env.sends().map((r) => r.body.clientMessageId);
  assert.equal(new Set(ids).size, 1);
  assert.equal(ids.length, 3);
  assert.equal(message.clientMessageId, ids[0]);
  assert.equal(env.client.stats.retries, 2);
  assert.equal(env.client.stats.sendFailures, 0);
  env.client.close();
});

test("a 429 is retried after its Retry-After seconds", async () => {
  const env = await ready([error(429, "rate_limited", { "Retry-After": "2" }), saved(1)]);
  const promise = env.client.send(PEER, "hi", { conversationId: CONV });
  await env.clock.tick(1999);
  assert.equal(env.sends().length, 1);
  await env.clock.tick(1);
  assert.equal(env.sends().length, 2);
  await promise;
  assert.equal(env.client.stats.retries, 1);
  env.client.close();
});

test("a 422 is not retried: the row is marked failed and send rejects with status and code", async () => {
  const env = await ready([error(422, "invalid_field")]);
  const promise = env.client.send(PEER, "  ", { conversationId: CONV });
  await assert.rejects(promise, (err) => err.status === 422 && err.code === "invalid_field");
  assert.equal(env.sends().length, 1);
  const [row] = env.conversation.messages;
  assert.equal(row.state, "failed");
  assert.deepEqual({ status: row.error.status, code: row.error.code }, { status: 422, code: "invalid_field" });
  assert.equal(env.client.stats.sendFailures, 1);
  assert.equal(env.client.stats.retries, 0);
  env.client.close();
});

test("when attempts run out the send fails, and the history is checked for a lost answer", async () => {
  const env = await ready([error(503, "database_unavailable")]);
  const promise = env.client.send(PEER, "hi", { conversationId: CONV });
  const outcome = assert.rejects(promise, (err) => err.status === 503 && err.code === "database_unavailable");
  await env.clock.tick(100 + 200 + 400);
  await outcome;
  assert.equal(env.sends().length, 4, "retry.attempts in all");
  assert.equal(env.conversation.messages[0].state, "failed");
  assert.equal(env.fetch.history().length, 2, "a catch-up after the unanswered send");
  env.client.close();
});

test("a failed send can be retried with the same clientMessageId, reusing its row", async () => {
  const env = await ready([error(422, "invalid_field"), saved(1)]);
  await assert.rejects(env.client.send(PEER, "hi", { conversationId: CONV, clientMessageId: "c-1" }));
  assert.equal(env.conversation.messages[0].state, "failed");
  const again = env.client.send(PEER, "hi", { conversationId: CONV, clientMessageId: "c-1" });
  assert.deepEqual(
    env.conversation.messages.map((r) => r.state),
    ["sending"],
  );
  await again;
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.state, r.clientMessageId]),
    [["saved", "c-1"]],
  );
  env.client.close();
});

test("the own message arriving through Pusher before the send's answer still appears once", async () => {
  const held = deferred();
  const env = await ready([held.promise]);
  const promise = env.client.send(PEER, "hi", { conversationId: CONV, clientMessageId: "c-1" });
  env.channel().emit("new-message", msg(1, { senderId: ME, recipientId: PEER, content: "hi", clientMessageId: "c-1" }));
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state]),
    [[1, "saved"]],
  );
  held.resolve(saved(1));
  await promise;
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state]),
    [[1, "saved"]],
  );
  assert.deepEqual(env.seqs(), [1]);
  assert.equal(env.client.stats.duplicates, 1);
  env.client.close();
});

test("a send answer ahead of lastSeq waits for the missing messages and is delivered in order", async () => {
  const held = deferred();
  const env = await ready([saved(3)], {
    routes: { "POST /api/messages/send": [saved(3)], "GET /api/conversations/messages": [{ body: page([]) }, held.promise] },
  });
  await env.client.send(PEER, "third", { conversationId: CONV });
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.state]),
    [[3, "saved"]],
    "saved, but not delivered before 1 and 2",
  );
  assert.deepEqual(env.seqs(), []);
  assert.equal(env.client.stats.gaps, 1);
  assert.equal(env.fetch.history().at(-1).query.afterSeq, "0");
  held.resolve({ body: page([msg(1), msg(2), msg(3, { senderId: ME, recipientId: PEER })]) });
  await settle();
  assert.deepEqual(env.seqs(), [1, 2, 3]);
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.mine]),
    [
      [1, false],
      [2, false],
      [3, true],
    ],
  );
  env.client.close();
});

test("without conversationId the row appears where the peer is known, else with the answer", async () => {
  const env = await ready([saved(2), saved(3)]);
  const first = env.client.send(PEER, "early");
  assert.equal(env.conversation.messages.length, 0, "the peer is not known yet");
  env.channel().emit("new-message", msg(1));
  await first;
  assert.deepEqual(
    env.conversation.messages.map((r) => [r.seq, r.content]),
    [
      [1, "message 1"],
      [2, "early"],
    ],
  );
  const second = env.client.send(PEER, "later");
  assert.equal(env.conversation.messages.at(-1).state, "sending");
  await second;
  assert.deepEqual(
    env.conversation.messages.map((r) => r.seq),
    [1, 2, 3],
  );
  env.client.close();
});

test("bad arguments reject without a request", async () => {
  const env = await ready([saved(1)]);
  await assert.rejects(env.client.send(0, "x"), TypeError);
  await assert.rejects(env.client.send(PEER, 5), TypeError);
  assert.equal(env.sends().length, 0);
  env.client.close();
});

test("a request that never answers times out and is retried", async () => {
  let calls = 0;
  const env = await ready(
    () => {
      calls += 1;
      return calls === 1 ? new Promise(() => {}) : saved(1);
    },
    { requestTimeoutMs: 1000 },
  );
  const promise = env.client.send(PEER, "hi", { conversationId: CONV });
  await env.clock.tick(1000 + 100);
  const message = await promise;
  assert.equal(message.seq, 1);
  assert.equal(env.sends().length, 2);
  assert.equal(env.sends()[0].signal.aborted, true);
  env.client.close();
});
