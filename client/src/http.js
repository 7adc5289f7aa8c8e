import { sleep } from "./clock.js";

// 429 and 503 are the service's own "try again" answers; 502 and 504 come from proxies in
// front of it. Every request this client repeats is idempotent (sends carry a
// clientMessageId), so repeating after an unknown outcome cannot duplicate anything.
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

export class ApiError extends Error {
  constructor(message, { status = 0, code = "error", retryable = false, retryAfterMs = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

export function closedError() {
  return new ApiError("the client or conversation was closed", { code: "closed" });
}

function asApiError(reason) {
  return reason instanceof ApiError ? reason : new ApiError("request aborted", { code: "aborted", cause: reason });
}

// Retry-After is seconds or an HTTP date (RFC 9110); anything else falls back to backoff.
export function parseRetryAfter(value, now) {
  if (value == null) return null;
  const text = String(value).trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

// Half the exponential step is fixed and half random, so clients that failed together do not
// come back together, yet every wait stays within [step/2, step] and under maxDelayMs.
export function backoffDelay(failedAttempt, { baseDelayMs, maxDelayMs }, random = Math.random) {
  const step = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, failedAttempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

function untilAborted(signal) {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// All HTTP goes through here so the bearer token, timeouts and the retry policy live in one
// place (the Pusher channel authorisation uses it too).
export function createHttp({ baseUrl, token, fetch, clock, random, retry, requestTimeoutMs, stats }) {
  const root = String(baseUrl).replace(/\/+$/, "");

  async function bearer() {
    try {
      // A function is asked on every attempt so a refreshed token is picked up by retries.
      const value = typeof token === "function" ? await token() : token;
      if (typeof value !== "string" || !value) throw new TypeError("token is empty");
      return value;
    } catch (err) {
      throw new ApiError(`could not get a token: ${err?.message ?? err}`, { code: "token_unavailable", cause: err });
    }
  }

  async function once(method, path, body, outer) {
    const controller = new AbortController();
    let timedOut = false;
    let timer = null;
    // Clears the timeout at once, so close() leaves no timer behind even for a moment.
    const forward = () => {
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
      controller.abort(outer.reason);
    };
    outer?.addEventListener("abort", forward, { once: true });
    if (requestTimeoutMs > 0) {
      timer = clock.setTimeout(() => {
        timer = null;
        timedOut = true;
        controller.abort(new ApiError("request timed out", { code: "timeout", retryable: true }));
      }, requestTimeoutMs);
    }
    try {
      if (outer?.aborted) throw outer.reason;
      const headers = { Accept: "application/json", Authorization: `Bearer ${await bearer()}` };
      const init = { method, headers, signal: controller.signal };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(typeof body === "function" ? body() : body);
      }
      let response;
      let data;
      try {
        // Raced against the signal because not every fetch (or test double) honours it, and
        // a body that never finishes must time out just like a response that never starts.
        [response, data] = await Promise.race([
          (async () => {
            const r = await fetch(root + path, init);
            return [r, await readJson(r)];
          })(),
          untilAborted(controller.signal),
        ]);
      } catch (err) {
        if (outer?.aborted) throw asApiError(outer.reason);
        if (timedOut) throw controller.signal.reason;
        if (err instanceof ApiError) throw err;
        throw new ApiError(`network error: ${err?.message ?? err}`, { code: "network_error", retryable: true, cause: err });
      }
      if (response.ok) {
        if (data === undefined || data === null) {
          throw new ApiError(`HTTP ${response.status} with a body that is not JSON`, { status: response.status, code: "bad_response" });
        }
        return data;
      }
      const retryable = RETRYABLE_STATUS.has(response.status);
      throw new ApiError(data?.error?.message ?? `HTTP ${response.status}`, {
        status: response.status,
        code: data?.error?.code ?? `http_${response.status}`,
        retryable,
        retryAfterMs: retryable ? parseRetryAfter(response.headers.get("Retry-After"), clock.now()) : null,
      });
    } finally {
      if (timer !== null) clock.clearTimeout(timer);
      outer?.removeEventListener("abort", forward);
    }
  }

  async function request(method, path, { body, signal, attempts = retry.attempts } = {}) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await once(method, path, body, signal);
      } catch (err) {
        const error = asApiError(err);
        if (!error.retryable || attempt >= attempts || signal?.aborted) throw error;
        stats.retries += 1;
        const delay = error.retryAfterMs ?? backoffDelay(attempt, retry, random);
        try {
          await sleep(clock, delay, signal);
        } catch (reason) {
          throw asApiError(reason);
        }
      }
    }
  }

  return { request };
}
