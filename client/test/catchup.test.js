import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, deferred, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;

test("a catch-up follows nextAfterSeq until the last page", async () => {
  const env = await setup({
    pageSize: 2,
    routes: {
      "GET /api/conversations/messages": [
        { body: page([msg(1), msg(2)], { full: true }) },
        { body: page([msg(3), msg(4)], { full: true }) },
        { body: page([msg(5)]) },
      ],
    },
  });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3, 4, 5]);
  assert.deepEqual(
    env.fetch.history().map((r) => [r.query.afterSeq, r.query.limit]),
    [
      ["0", "2"],
      ["2", "2"],
      ["4", "2"],
    ],
  );
  assert.equal(env.client.stats.catchUps, 1, "one run, however many pages");
  env.client.close();
});

test("every resubscription (after a reconnect) catches up from lastSeq", async () => {
  const env = await setup({
    routes: {
      "GET /api/conversations/messages": [{ body: page([msg(1), msg(2)]) }, { body: page([msg(3), msg(4)]) }],
    },
  });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  assert.deepEqual(seqs(), [1, 2]);
  env.pusher.connection.setState("connecting");
  env.pusher.connection.setState("connected");
  env.channel().emit("pusher:subscription_succeeded", {});
  await settle();
  assert.deepEqual(seqs(), [1, 2, 3, 4], "what was published while away comes from history");
  assert.deepEqual(
    env.fetch.history().map((r) => r.query.afterSeq),
    ["0", "2"],
  );
  assert.equal(env.client.stats.catchUps, 2);
  env.client.close();
});

test("catch-up requests during a running one coalesce into exactly one follow-up", async () => {
  const held = deferred();
  const env = await setup({
    routes: { "GET /api/conversations/messages": [held.promise, { body: page([msg(3)]) }] },
  });
  const { seqs } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  for (let i = 0; i < 3; i += 1) env.channel().emit("pusher:subscription_succeeded", {});
  await settle();
  assert.equal(env.fetch.history().length, 1, "only one catch-up at a time");
  held.resolve({ body: page([msg(1), msg(2)]) });
  await settle();
  assert.deepEqual(
    env.fetch.history().map((r) => r.query.afterSeq),
    ["0", "2"],
    "one follow-up, from the lastSeq reached by the first",
  );
  assert.deepEqual(seqs(), [1, 2, 3]);
  assert.equal(env.client.stats.catchUps, 2);
  env.client.close();
});

test("a catch-up that fails after its retries is tried again later", async () => {
  const env = await setup({
    retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 1000 },
    routes: {
      "GET /api/conversations/messages": [{ status: 503 }, { status: 503 }, { body: page([msg(1)]) }],
    },
  });
  const { seqs, errors } = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await env.clock.tick(100);
  assert.equal(env.fetch.history().length, 2);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].status, 503);
  await env.clock.tick(1000);
  assert.equal(env.fetch.history().length, 3);
  assert.deepEqual(seqs(), [1]);
  assert.equal(env.client.stats.retries, 1);
  env.client.close();
});
