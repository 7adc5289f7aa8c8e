// Test doubles for test/*.test.js, kept outside test/ so the runner does not run them as a
// test file: a scripted fetch, a Pusher stand-in that lets a test play the server side of
// the socket, and a clock that only moves when told to.

export const ME = 1;
export const PEER = 2;
export const CONV = 7;

export function makeJwt(payload) {
  const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  return `${enc({ alg: "HS256", typ: "JWT" })}.${enc(payload)}.c2ln`;
}

export const TOKEN = makeJwt({ sub: String(ME) });

export function msg(seq, fields = {}) {
  return {
    id: 100 + seq,
    conversationId: CONV,
    seq,
    senderId: PEER,
    recipientId: ME,
    content: `message ${seq}`,
    clientMessageId: null,
    createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, seq)).toISOString(),
    ...fields,
  };
}

export function page(messages, { full = false } = {}) {
  const last = messages[messages.length - 1];
  return {
    success: true,
    messages,
    nextAfter: full && last ? last.id : null,
    nextAfterSeq: full && last ? last.seq : null,
  };
}

// Lets every promise chain that is already runnable finish (fetch answers, JSON bodies).
export async function settle(rounds = 5) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

export class FakeClock {
  #now = 0;
  #timers = new Map();
  #nextId = 1;

  now = () => this.#now;

  setTimeout = (fn, ms) => {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms ?? 0), fn });
    return id;
  };

  clearTimeout = (id) => {
    this.#timers.delete(id);
  };

  get pending() {
    return this.#timers.size;
  }

  get delays() {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  async tick(ms) {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let next = null;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = end;
    await settle();
  }
}

export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * fetch double. Routes are matched by "METHOD /path" (path without query); a route's
 * responder is a function (request) => reply, or an array of replies used in turn (the last
 * one repeats). A reply is {status, body, headers}, the string "network" (fetch rejects),
 * or a promise of either (to hold a request in flight).
 */
export function createFetch(routes = {}) {
  const table = {
    "POST /api/pusher/auth": () => ({ body: { auth: "key:signature" } }),
    "POST /api/messages/receipt": () => ({ body: { success: true } }),
    "GET /api/conversations/messages": () => ({ body: page([]) }),
    ...routes,
  };
  const requests = [];
  const fetch = async (url, init = {}) => {
    const parsed = new URL(url);
    const request = {
      url,
      method: init.method ?? "GET",
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams),
      headers: init.headers ?? {},
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      signal: init.signal,
    };
    requests.push(request);
    const key = `${request.method} ${request.path}`;
    // Ids in paths are collapsed so one route serves every conversation/message.
    const generic = `${request.method} ${request.path.replace(/\/[0-9]+(?=\/|$)/g, "")}`;
    const route = table[key] ?? table[generic];
    if (!route) throw new Error(`unexpected request ${key}`);
    let reply;
    if (Array.isArray(route)) {
      route.calls = (route.calls ?? 0) + 1;
      reply = route[Math.min(route.calls, route.length) - 1];
    } else {
      reply = route(request);
    }
    reply = await reply;
    if (typeof reply === "function") reply = await reply(request);
    if (reply === "network") throw new TypeError("fetch failed");
    const { status = 200, body, headers = {} } = reply;
    return new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json", ...headers },
    });
  };
  fetch.requests = requests;
  fetch.to = (method, pathStart) => requests.filter((r) => r.method === method && r.path.startsWith(pathStart));
  fetch.history = () => requests.filter((r) => r.method === "GET" && r.path.includes("/messages"));
  return fetch;
}

class Emitter {
  listeners = new Map();

  bind(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, []);
    this.listeners.get(event).push(fn);
  }

  unbind(event, fn) {
    const list = this.listeners.get(event) ?? [];
    this.listeners.set(
      event,
      list.filter((f) => f !== fn),
    );
  }

  emit(event, data) {
    for (const fn of [...(this.listeners.get(event) ?? [])]) fn(data);
  }

  count(event) {
    return (this.listeners.get(event) ?? []).length;
  }
}

class FakeConnection extends Emitter {
  state = "initialized";
  socket_id = null;
  #sockets = 0;

  setState(current) {
    const previous = this.state;
    this.state = current;
    if (current === "connected") this.socket_id = `1234.${++this.#sockets}`;
    this.emit("state_change", { previous, current });
    this.emit(current);
  }
}

class FakeChannel extends Emitter {
  constructor(name) {
    super();
    this.name = name;
  }
}

/** Returns a Pusher class whose instances are recorded in `.instances`. */
export function createPusher() {
  class FakePusher {
    static instances = [];

    constructor(key, options) {
      this.key = key;
      this.options = options;
      this.connection = new FakeConnection();
      this.channels = new Map();
      this.subscribed = [];
      this.unsubscribed = [];
      this.disconnected = false;
      FakePusher.instances.push(this);
    }

    subscribe(name) {
      const channel = new FakeChannel(name);
      this.channels.set(name, channel);
      this.subscribed.push(name);
      return channel;
    }

    unsubscribe(name) {
      this.unsubscribed.push(name);
      this.channels.delete(name);
    }

    disconnect() {
      this.disconnected = true;
      this.connection.setState("disconnected");
    }

    channel(name) {
      return this.channels.get(name);
    }

    // Plays pusher-js: ask the configured customHandler for this channel's auth.
    authorize(name) {
      return new Promise((resolve) => {
        this.options.channelAuthorization.customHandler(
          { socketId: this.connection.socket_id, channelName: name },
          (error, data) => resolve({ error, data }),
        );
      });
    }

    // Connect, authorise and report the subscription as pusher-js would.
    async subscribeOk(name) {
      if (this.connection.state !== "connected") this.connection.setState("connected");
      const { error } = await this.authorize(name);
      if (error) this.channel(name).emit("pusher:subscription_error", { type: "AuthError", error: error.message });
      else this.channel(name).emit("pusher:subscription_succeeded", {});
      return error;
    }
  }
  return FakePusher;
}

/** A client wired to fakes; `routes` are passed to createFetch. */
export async function setup({ routes, ...options } = {}) {
  const { connect } = await import("../src/index.js");
  const Pusher = createPusher();
  const fetch = createFetch(routes);
  const clock = new FakeClock();
  const client = connect({
    baseUrl: "http://svc.test/",
    token: TOKEN,
    pusher: { key: "app-key", wsHost: "127.0.0.1", wsPort: 6001, forceTLS: false, enabledTransports: ["ws"] },
    Pusher,
    fetch,
    clock,
    random: () => 1,
    retry: { attempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
    ...options,
  });
  const pusher = Pusher.instances[0];
  return { client, pusher, fetch, clock, channel: (id = CONV) => pusher.channel(`private-conversation-${id}`) };
}

/** Opens conversation CONV with recording handlers; optionally completes the subscription. */
export function openRecorded(client, handlers = {}) {
  const delivered = [];
  const changes = [];
  const errors = [];
  const conversation = client.open(handlers.id ?? CONV, {
    onMessage: (m) => delivered.push(m),
    onChange: (rows) => changes.push(rows),
    onError: (e) => errors.push(e),
    ...handlers,
  });
  return { conversation, delivered, changes, errors, seqs: () => delivered.map((m) => m.seq) };
}
