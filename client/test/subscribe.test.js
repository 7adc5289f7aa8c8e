import assert from "node:assert/strict";
import { test } from "node:test";
import { CONV, TOKEN, makeJwt, openRecorded, settle, setup } from "../testing/fakes.js";

test("connect passes the pusher options through and authorises with its own handler", async () => {
  const { pusher, client } = await setup();
  assert.equal(pusher.key, "app-key");
  assert.deepEqual(
    { ...pusher.options, channelAuthorization: undefined },
    {
      cluster: "mt1",
      enableStats: false,
      wsHost: "127.0.0.1",
      wsPort: 6001,
      forceTLS: false,
      enabledTransports: ["ws"],
      channelAuthorization: undefined,
    },
  );
  assert.equal(typeof pusher.options.channelAuthorization.customHandler, "function");
  assert.equal(client.userId, 1, "user id read from the token's sub claim");
  client.close();
});

test("open() subscribes to the conversation channel and the auth goes to /api/pusher/auth with the bearer token", async () => {
  const { client, pusher, fetch } = await setup();
  openRecorded(client);
  assert.deepEqual(pusher.subscribed, [`private-conversation-${CONV}`]);
  pusher.connection.setState("connected");
  const { error, data } = await pusher.authorize(`private-conversation-${CONV}`);
  assert.equal(error, null);
  assert.deepEqual(data, { auth: "key:signature" });
  const [auth] = fetch.to("POST", "/api/pusher/auth");
  assert.equal(auth.url, "http://svc.test/api/pusher/auth");
  assert.equal(auth.headers.Authorization, `Bearer ${TOKEN}`);
  assert.equal(auth.headers["Content-Type"], "application/json");
  assert.deepEqual(auth.body, { socket_id: pusher.connection.socket_id, channel_name: `private-conversation-${CONV}` });
  client.close();
});

test("a refused channel auth reaches pusher-js as an error and onError, and is not retried or polled", async () => {
  const { client, pusher, fetch, clock } = await setup({
    routes: { "POST /api/pusher/auth": () => ({ status: 403, body: { success: false, error: { code: "forbidden", message: "no" } } }) },
  });
  const { errors } = openRecorded(client);
  const error = await pusher.subscribeOk(`private-conversation-${CONV}`);
  assert.equal(error.status, 403);
  assert.equal(error.code, "forbidden");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].status, 403);
  await clock.tick(10_000);
  assert.equal(fetch.to("POST", "/api/pusher/auth").length, 1);
  assert.equal(fetch.history().length, 0, "a non-participant gets no polling");
  client.close();
});

test("a token function is asked for every request, so a refreshed token is used", async () => {
  let n = 0;
  const tokens = [makeJwt({ sub: 1, n: 1 }), makeJwt({ sub: 1, n: 2 }), makeJwt({ sub: 1, n: 3 })];
  const { client, pusher, fetch } = await setup({ token: () => tokens[Math.min(n++, 2)], userId: 1 });
  openRecorded(client);
  await pusher.subscribeOk(`private-conversation-${CONV}`);
  await settle();
  const used = fetch.requests.map((r) => r.headers.Authorization);
  assert.deepEqual(used, [`Bearer ${tokens[0]}`, `Bearer ${tokens[1]}`]);
  client.close();
});

test("an async token requires an explicit userId", async () => {
  await assert.rejects(setup({ token: async () => TOKEN }), /userId is required/);
  const { client } = await setup({ token: async () => TOKEN, userId: 5 });
  assert.equal(client.userId, 5);
  client.close();
});
