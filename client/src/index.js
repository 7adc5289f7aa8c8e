import Pusher from "pusher-js";
import { createTimers, systemClock } from "./clock.js";
import { watchConnection } from "./connection.js";
import { Conversation, channelName } from "./conversation.js";
import { ApiError, closedError, createHttp } from "./http.js";
import { newClientMessageId } from "./ids.js";
import { createPoller } from "./poller.js";
import { createReceipts } from "./receipts.js";
import { createStats, snapshotStats } from "./stats.js";
import { userIdFromToken } from "./jwt.js";

export { ApiError } from "./http.js";
export { newClientMessageId } from "./ids.js";
export { userIdFromToken } from "./jwt.js";

const DEFAULTS = Object.freeze({
  pollIntervalMs: 2000,
  connectingGraceMs: 3000,
  pageSize: 100,
  requestTimeoutMs: 15000,
  retry: Object.freeze({ attempts: 8, baseDelayMs: 250, maxDelayMs: 5000 }),
});

const isId = (value) => Number.isSafeInteger(value) && value > 0;

function resolveUserId(options) {
  if (options.userId !== undefined) {
    if (!isId(options.userId)) throw new TypeError("options.userId must be a positive integer");
    return options.userId;
  }
  const token = typeof options.token === "function" ? options.token() : options.token;
  if (token && typeof token.then === "function") {
    throw new TypeError("options.userId is required when options.token returns a Promise");
  }
  return userIdFromToken(token, options.userClaim ?? "sub");
}

function positive(value, fallback, name) {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number`);
  return value;
}

class Client {
  #options;
  #userId;
  #stats = createStats();
  #clock;
  #timers;
  #http;
  #receipts = null;
  #pusher;
  #connection;
  #poller;
  #conversations = new Map();
  #controller = new AbortController();
  #closed = false;

  constructor(options) {
    if (!options || typeof options !== "object") throw new TypeError("connect() needs an options object");
    if (typeof options.baseUrl !== "string") throw new TypeError("options.baseUrl must be a string");
    if (typeof options.token !== "string" && typeof options.token !== "function") {
      throw new TypeError("options.token must be a string or a function returning one");
    }
    if (!options.pusher || typeof options.pusher.key !== "string") throw new TypeError("options.pusher.key is required");

    const retry = { ...DEFAULTS.retry, ...options.retry };
    this.#options = {
      pollIntervalMs: positive(options.pollIntervalMs, DEFAULTS.pollIntervalMs, "pollIntervalMs"),
      connectingGraceMs: positive(options.connectingGraceMs, DEFAULTS.connectingGraceMs, "connectingGraceMs"),
      pageSize: Math.min(200, Math.floor(positive(options.pageSize, DEFAULTS.pageSize, "pageSize"))),
      retry: {
        attempts: Math.max(1, Math.floor(retry.attempts)),
        baseDelayMs: Math.max(0, retry.baseDelayMs),
        maxDelayMs: Math.max(0, retry.maxDelayMs),
      },
      random: options.random ?? Math.random,
    };
    this.#userId = resolveUserId(options);
    this.#clock = options.clock ?? systemClock;
    this.#timers = createTimers(this.#clock);
    // Unbound window.fetch throws "Illegal invocation" in browsers, hence the wrapper.
    const fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#http = createHttp({
      baseUrl: options.baseUrl,
      token: options.token,
      fetch: fetchImpl,
      clock: this.#clock,
      random: this.#options.random,
      retry: this.#options.retry,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      stats: this.#stats,
    });
    if (options.receipts) {
      this.#receipts = createReceipts({ http: this.#http, stats: this.#stats, signal: this.#controller.signal });
    }

    const PusherCtor = options.Pusher ?? Pusher;
    const { key, ...pusherOptions } = options.pusher;
    this.#pusher = new PusherCtor(key, {
      cluster: "mt1",
      enableStats: false,
      ...pusherOptions,
      // Channel auth goes through the same HTTP layer as everything else, so the token (and
      // its refresh function) is handled in one place.
      channelAuthorization: { customHandler: (params, callback) => this.#authorize(params, callback) },
    });

    this.#poller = createPoller({
      timers: this.#timers,
      intervalMs: this.#options.pollIntervalMs,
      tick: () => {
        for (const conversation of [...this.#conversations.values()]) {
          if (!this.#connection.usable || conversation.subscriptionFailed) conversation.poll();
        }
      },
    });
    this.#connection = watchConnection(this.#pusher.connection, {
      timers: this.#timers,
      graceMs: this.#options.connectingGraceMs,
      onChange: () => this.#updatePolling(),
    });
  }

  get userId() {
    return this.#userId;
  }

  get socketId() {
    return this.#pusher.connection?.socket_id ?? null;
  }

  get connectionState() {
    return this.#pusher.connection?.state ?? "initialized";
  }

  get stats() {
    return snapshotStats(this.#stats);
  }

  open(conversationId, handlers = {}) {
    if (this.#closed) throw new Error("client is closed");
    if (!isId(conversationId)) throw new TypeError("conversationId must be a positive integer");
    if (this.#conversations.has(conversationId)) throw new Error(`conversation ${conversationId} is already open`);
    const afterSeq = handlers.afterSeq ?? 0;
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new TypeError("afterSeq must be a non-negative integer");
    const conversation = new Conversation(conversationId, this.#conversationContext(), { ...handlers, afterSeq });
    // Registered before subscribing: pusher-js may ask for the channel's auth right away.
    this.#conversations.set(conversationId, conversation);
    conversation.subscribe(this.#pusher);
    this.#updatePolling();
    return conversation;
  }

  send(recipientId, content, options = {}) {
    if (this.#closed) return Promise.reject(closedError());
    if (!isId(recipientId)) return Promise.reject(new TypeError("recipientId must be a positive integer"));
    if (typeof content !== "string") return Promise.reject(new TypeError("content must be a string"));
    const { conversationId, clientMessageId = newClientMessageId() } = options;
    if (typeof clientMessageId !== "string" || !clientMessageId) {
      return Promise.reject(new TypeError("clientMessageId must be a non-empty string"));
    }
    // Without a conversation id, the row can only go where the other participant is known.
    const targets =
      conversationId !== undefined
        ? [this.#conversations.get(conversationId)].filter(Boolean)
        : [...this.#conversations.values()].filter((c) => c.peerId === recipientId);
    for (const conversation of targets) conversation.addPending({ recipientId, content, clientMessageId });
    this.#stats.sends += 1;
    return this.#post(recipientId, content, clientMessageId, targets);
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.stop();
    this.#poller.stop();
    for (const conversation of [...this.#conversations.values()]) conversation.close();
    this.#controller.abort(closedError());
    this.#timers.clearAll();
    this.#pusher.disconnect();
  }

  async #post(recipientId, content, clientMessageId, targets) {
    try {
      const data = await this.#http.request("POST", "/api/messages/send", {
        // Built per attempt: after a reconnect the socket id to exclude from the echo is the new one.
        body: () => {
          const socketId = this.socketId;
          return socketId ? { recipientId, content, clientMessageId, socketId } : { recipientId, content, clientMessageId };
        },
        signal: this.#controller.signal,
      });
      const message = data?.message;
      if (!message || !isId(message.id) || !isId(message.seq) || !isId(message.conversationId)) {
        throw new ApiError("send answered without a message", { status: 200, code: "bad_response" });
      }
      for (const conversation of targets) {
        if (conversation.id !== message.conversationId) conversation.dropPending(clientMessageId);
      }
      this.#conversations.get(message.conversationId)?.acceptSent(message);
      return Object.freeze({ ...message });
    } catch (err) {
      if (err instanceof ApiError && err.code === "closed") throw err;
      // When the answer was lost, the message may be stored anyway and may already have come
      // in through Pusher or history: then the send did succeed.
      for (const conversation of targets) {
        const delivered = conversation.deliveredMine(clientMessageId);
        if (delivered) return delivered;
      }
      this.#stats.sendFailures += 1;
      for (const conversation of targets) conversation.failPending(clientMessageId, err);
      // An unanswered send may still have been stored; with our own socket excluded from its
      // echo, only the history can tell, so look there once.
      if (err.retryable) for (const conversation of targets) conversation.requestCatchUp();
      throw err;
    }
  }

  #authorize({ socketId, channelName: name }, callback) {
    this.#http
      .request("POST", "/api/pusher/auth", {
        body: { socket_id: socketId, channel_name: name },
        signal: this.#controller.signal,
      })
      .then(
        (data) => {
          if (!this.#closed) callback(null, data);
        },
        (err) => {
          if (this.#closed) return;
          for (const conversation of this.#conversations.values()) {
            if (channelName(conversation.id) === name) conversation.authFailed(err.status);
          }
          callback(err, null);
        },
      );
  }

  #conversationContext() {
    return {
      userId: this.#userId,
      http: this.#http,
      stats: this.#stats,
      clock: this.#clock,
      random: this.#options.random,
      pageSize: this.#options.pageSize,
      retry: this.#options.retry,
      pusher: this.#pusher,
      delivered: (message) => {
        if (this.#receipts && message.recipientId === this.#userId && message.senderId !== this.#userId) {
          this.#receipts.post(message.id);
        }
      },
      pollingNeedChanged: () => this.#updatePolling(),
      conversationClosed: (conversation) => {
        if (this.#conversations.get(conversation.id) === conversation) this.#conversations.delete(conversation.id);
        this.#updatePolling();
      },
    };
  }

  #updatePolling() {
    if (this.#closed) return;
    const conversations = [...this.#conversations.values()];
    const needed =
      conversations.length > 0 && (!this.#connection.usable || conversations.some((c) => c.subscriptionFailed));
    if (needed) this.#poller.start();
    else this.#poller.stop();
  }
}

/** Creates a client, opens its Pusher connection and returns it; see index.d.ts. */
export function connect(options) {
  return new Client(options);
}
