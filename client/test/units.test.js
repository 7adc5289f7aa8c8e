import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay, parseRetryAfter } from "../src/http.js";
import { newClientMessageId, userIdFromToken } from "../src/index.js";
import { makeJwt } from "../testing/fakes.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("the user id is read from the token's sub claim, as a string or a number", () => {
  assert.equal(userIdFromToken(makeJwt({ sub: "42" })), 42);
  assert.equal(userIdFromToken(makeJwt({ sub: 7, name: "Zoë ✓" })), 7);
  assert.equal(userIdFromToken(makeJwt({ uid: "9" }), "uid"), 9);
  for (const bad of ["nope", makeJwt({ sub: "0" }), makeJwt({ sub: "abc" }), makeJwt({ sub: -1 }), makeJwt({})]) {
    assert.throws(() => userIdFromToken(bad), TypeError);
  }
});

test("client message ids are v4 UUIDs, also without crypto.randomUUID", () => {
  assert.match(newClientMessageId(), UUID);
  assert.match(newClientMessageId({ getRandomValues: (b) => b.fill(0xff) }), UUID);
  assert.match(newClientMessageId(undefined), UUID);
  assert.notEqual(newClientMessageId({}), newClientMessageId({}));
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("2", 0), 2000);
  assert.equal(parseRetryAfter(" 0.5 ", 0), 500);
  const now = Date.parse("2024-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Mon, 01 Jan 2024 00:00:03 GMT", now), 3000);
  assert.equal(parseRetryAfter("Mon, 01 Jan 2023 00:00:03 GMT", now), 0);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter("soon", now), null);
});

test("backoff doubles, stays within [step/2, step] and is capped at maxDelayMs", () => {
  const retry = { baseDelayMs: 250, maxDelayMs: 5000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, retry, () => 1)),
    [250, 500, 1000, 2000, 4000, 5000, 5000],
  );
  assert.equal(backoffDelay(1, retry, () => 0), 125);
  assert.equal(backoffDelay(10, retry, () => 0), 2500);
});
