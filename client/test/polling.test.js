import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, msg, openRecorded, page, settle, setup } from "../testing/fakes.js";

const CHANNEL = `private-conversation-${CONV}`;

async function subscribed(options) {
  const env = await setup(options);
  const rec = openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  await settle();
  const catchUpRequests = env.fetch.history().length;
  return { ...env, ...rec, polls: () => env.fetch.history().length - catchUpRequests };
}

test("polling starts when the connection becomes unavailable and stops when it is connected", async () => {
  const env = await subscribed({
    routes: {
      "GET /api/conversations/messages": [{ body: page([]) }, { body: page([]) }, { body: page([msg(1)]) }, { body: page([]) }],
    },
  });
  env.pusher.connection.setState("unavailable");
  await settle();
  assert.equal(env.polls(), 1, "the first poll is immediate");
  await env.clock.tick(2000);
  assert.equal(env.polls(), 2);
  assert.deepEqual(env.seqs(), [1], "polled messages go through the same delivery");
  await env.clock.tick(2000);
  assert.equal(env.polls(), 3);
  assert.equal(env.fetch.history().at(-1).query.afterSeq, "1");
  assert.equal(env.client.stats.polls, 3);
  env.pusher.connection.setState("connecting");
  env.pusher.connection.setState("connected");
  await env.clock.tick(10_000);
  assert.equal(env.polls(), 3, "no polling once connected");
  env.client.close();
});

test("a long 'connecting' starts polling after connectingGraceMs; a short one does not", async () => {
  const env = await subscribed();
  env.pusher.connection.setState("connecting");
  await env.clock.tick(2000);
  env.pusher.connection.setState("connected");
  await env.clock.tick(10_000);
  assert.equal(env.polls(), 0, "a reconnect within the grace period is not worth polling");

  env.pusher.connection.setState("connecting");
  await env.clock.tick(2999);
  assert.equal(env.polls(), 0);
  await env.clock.tick(1);
  assert.equal(env.polls(), 1);
  // pusher-js going round connecting -> unavailable -> connecting keeps polling going.
  env.pusher.connection.setState("unavailable");
  env.pusher.connection.setState("connecting");
  await env.clock.tick(2000);
  assert.equal(env.polls(), 2);
  env.pusher.connection.setState("connected");
  await env.clock.tick(10_000);
  assert.equal(env.polls(), 2);
  env.client.close();
});

test("'failed' and a 'disconnected' not caused by close() poll too", async () => {
  for (const state of ["failed", "disconnected"]) {
    const env = await subscribed({ pollIntervalMs: 500 });
    env.pusher.connection.setState(state);
    await env.clock.tick(1000);
    assert.equal(env.polls(), 3, state);
    env.client.close();
    await env.clock.tick(5000);
    assert.equal(env.polls(), 3, `${state}: nothing after close()`);
  }
});

test("an initial connection that takes too long is covered by polling from open()", async () => {
  const env = await setup();
  const { seqs } = openRecorded(env.client);
  env.pusher.connection.setState("connecting");
  await env.clock.tick(3000);
  assert.equal(env.fetch.history().length, 1);
  assert.equal(env.client.stats.polls, 1);
  assert.deepEqual(seqs(), []);
  env.client.close();
});

test("a poll is skipped while a catch-up is in flight", async () => {
  let release;
  const env = await setup({
    routes: {
      "GET /api/conversations/messages": () => new Promise((resolve) => (release = () => resolve({ body: page([msg(1)]) }))),
    },
  });
  openRecorded(env.client);
  await env.pusher.subscribeOk(CHANNEL);
  env.pusher.connection.setState("unavailable");
  await env.clock.tick(4000);
  assert.equal(env.fetch.history().length, 1);
  assert.equal(env.client.stats.polls, 0);
  release();
  await env.clock.tick(2000);
  assert.equal(env.client.stats.polls, 1);
  env.client.close();
});

test("a subscription that failed for a passing reason is polled until it succeeds", async () => {
  const env = await setup({
    retry: { attempts: 1 },
    routes: { "POST /api/pusher/auth": [{ status: 503, body: { success: false, error: { code: "database_unavailable", message: "x" } } }] },
  });
  const { errors } = openRecorded(env.client);
  const error = await env.pusher.subscribeOk(CHANNEL);
  assert.equal(error.status, 503);
  assert.equal(errors[0].code, "subscription_failed");
  assert.equal(errors[0].status, 503);
  await settle();
  assert.equal(env.client.stats.polls, 1, "the connection is fine, but this channel gets no events");
  await env.clock.tick(2000);
  assert.equal(env.client.stats.polls, 2);
  env.channel().emit("pusher:subscription_succeeded", {}); // e.g. after pusher-js reconnected
  await env.clock.tick(10_000);
  assert.equal(env.client.stats.polls, 2);
  env.client.close();
});
