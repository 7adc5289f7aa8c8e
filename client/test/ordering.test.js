import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, deferred, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;

// A conversation whose first catch-up is done (empty history), so events are all there is.
async function ready(options) {
  const env = await setup(options);
  const rec = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  env.fetch.requests.length = 0;
  return { ...env, ...rec, emit: (m) => env.channel().emit("new-message", m) };
}

test("events in order are delivered once each and lastSeq follows them", async () => {
  const { client, emit, seqs, conversation } = await ready();
  emit(msg(1));
  emit(msg(2));
  assert.deepEqual(seqs(), [1, 2]);
  assert.equal(conversation.lastSeq, 2);
  assert.equal(client.stats.events, 2);
  assert.equal(client.stats.delivered, 2);
  client.close();
});

test("reordered events are delivered in seq order", async () => {
  const held = deferred();
  const { client, emit, seqs, fetch } = await ready({
    routes: { "GET /api/conversations/messages": [{ body: page([]) }, held.promise] },
  });
  emit(msg(1));
  emit(msg(3));
  emit(msg(4));
  assert.deepEqual(seqs(), [1], "3 and 4 wait for 2");
  emit(msg(2));
  assert.deepEqual(seqs(), [1, 2, 3, 4]);
  held.resolve({ body: page([msg(2), msg(3), msg(4)]) });
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3, 4], "the gap fetch's answer adds nothing");
  assert.equal(fetch.history().length, 1);
  client.close();
});

test("a duplicated event is not delivered twice", async () => {
  const { client, emit, seqs } = await ready();
  emit(msg(1));
  emit(msg(1));
  emit(msg(2));
  emit(msg(1));
  assert.deepEqual(seqs(), [1, 2]);
  assert.equal(client.stats.duplicates, 2);
  assert.equal(client.stats.events, 4);
  client.close();
});

test("an event arriving during an in-flight catch-up is not a gap and starts no second fetch", async () => {
  const held = deferred();
  const env = await setup({ routes: { "GET /api/conversations/messages": () => held.promise } });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  assert.equal(env.fetch.history().length, 1, "the subscription's catch-up is in flight");
  env.channel().emit("new-message", msg(3));
  await settle();
  assert.equal(env.client.stats.gaps, 0);
  assert.equal(env.fetch.history().length, 1);
  held.resolve({ body: page([msg(1), msg(2)]) });
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3]);
  assert.equal(env.client.stats.gaps, 0);
  assert.equal(env.fetch.history().length, 1);
  env.client.close();
});

test("a real gap triggers exactly one fetch for the missing range", async () => {
  const held = deferred();
  const { client, emit, seqs, fetch } = await ready({
    routes: { "GET /api/conversations/messages": [{ body: page([]) }, held.promise] },
  });
  emit(msg(1));
  emit(msg(4));
  emit(msg(5));
  await settle();
  assert.equal(client.stats.gaps, 1);
  const history = fetch.history();
  assert.equal(history.length, 1);
  assert.equal(history[0].query.afterSeq, "1");
  held.resolve({ body: page([msg(2), msg(3), msg(4), msg(5)]) });
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3, 4, 5]);
  assert.equal(fetch.history().length, 1);
  assert.equal(client.stats.gaps, 1);
  client.close();
});

test("a hole left after the in-flight fetch finished is a gap and is fetched again", async () => {
  const first = deferred();
  const answers = [first.promise, { body: page([msg(2), msg(3)]) }];
  const env = await setup({ routes: { "GET /api/conversations/messages": answers } });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  env.channel().emit("new-message", msg(3));
  // The server answered before 2 and 3 were committed.
  first.resolve({ body: page([msg(1)]) });
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3]);
  assert.equal(env.client.stats.gaps, 1);
  const history = env.fetch.history();
  assert.deepEqual(
    history.map((r) => r.query.afterSeq),
    ["0", "1"],
  );
  env.client.close();
});

test("a catch-up answer is applied against lastSeq as it is when it arrives", async () => {
  const held = deferred();
  const env = await setup({ routes: { "GET /api/conversations/messages": () => held.promise } });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  env.channel().emit("new-message", msg(1));
  env.channel().emit("new-message", msg(2));
  assert.deepEqual(seqs(), [1, 2], "events are not held back by the running catch-up");
  held.resolve({ body: page([msg(1), msg(2), msg(3)]) });
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3]);
  assert.equal(env.client.stats.duplicates, 2);
  env.client.close();
});

test("afterSeq sets where the conversation starts", async () => {
  const env = await setup();
  const { conversation, seqs } = openRecorded(env.client, { afterSeq: 5 });
  assert.equal(conversation.lastSeq, 5);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  assert.equal(env.fetch.history()[0].query.afterSeq, "5");
  env.channel().emit("new-message", msg(5));
  env.channel().emit("new-message", msg(6));
  assert.deepEqual(seqs(), [6]);
  env.client.close();
});

test("malformed events and other conversations' messages are ignored", async () => {
  const { client, emit, seqs, conversation } = await ready();
  emit({ id: 1, seq: "x" });
  emit("not json");
  emit(msg(1, { conversationId: CONV + 1 }));
  emit(JSON.stringify(msg(1)));
  assert.deepEqual(seqs(), [1]);
  assert.equal(conversation.lastSeq, 1);
  client.close();
});
