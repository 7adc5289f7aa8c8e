import { createTimers } from "./clock.js";
import { ApiError, backoffDelay, closedError } from "./http.js";

export const channelName = (conversationId) => `private-conversation-${conversationId}`;

// Auth answers that will not change by asking again: polling would only get 404s too.
const PERMANENT_AUTH_STATUS = new Set([401, 403, 404]);

const MAX_EARLY_RECEIPTS = 1000;

const isId = (value) => Number.isSafeInteger(value) && value > 0;

// Pusher, history pages and send responses all hand us "a message"; only well-formed ones
// may move lastSeq, or one bad event could skip or stall the whole conversation.
function parseMessage(raw) {
  let data = raw;
  if (typeof data === "string") {
    try {
      data = JSON.parse(data);
    } catch {
      return null;
    }
  }
  if (!data || typeof data !== "object") return null;
  if (!isId(data.id) || !isId(data.seq) || !isId(data.conversationId)) return null;
  return Object.freeze({ ...data, clientMessageId: data.clientMessageId ?? null });
}

function parseObject(raw) {
  if (typeof raw !== "string") return raw && typeof raw === "object" ? raw : null;
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

function row(message, fields) {
  return Object.freeze({
    id: message.id ?? null,
    conversationId: message.conversationId,
    seq: message.seq ?? null,
    senderId: message.senderId,
    recipientId: message.recipientId,
    content: message.content,
    clientMessageId: message.clientMessageId ?? null,
    createdAt: message.createdAt ?? null,
    receivedAt: null,
    error: null,
    ...fields,
  });
}

/**
 * One open conversation: turns messages from every source (Pusher, catch-up, polling, own
 * send responses) into exactly-once delivery in seq order. seq is contiguous per
 * conversation, so the only state needed is the highest contiguous seq delivered and a
 * buffer of messages that arrived ahead of a hole.
 */
export class Conversation {
  #ctx;
  #handlers;
  #lastSeq;
  #buffer = new Map(); // seq -> message that arrived before its predecessors
  #delivered = []; // rows, in seq order
  #indexById = new Map(); // message id -> index in #delivered
  #mineByClientId = new Map(); // clientMessageId -> delivered message sent by this user
  #pending = new Map(); // clientMessageId -> optimistic or failed row
  #receivedEarly = new Map(); // message id -> receivedAt, for receipts that beat their message
  #fetching = false;
  #followUp = false;
  #retry = null;
  #fruitlessFetches = 0;
  #gapAtSeq = null;
  #changed = false;
  #closed = false;
  #channel = null;
  #bindings = [];
  #authFailureStatus = null;
  #controller = new AbortController();
  #timers;

  /** @internal true while this conversation's subscription failed in a way polling can cover. */
  subscriptionFailed = false;
  /** @internal the other participant, once a message has shown who it is. */
  peerId = null;

  constructor(id, ctx, handlers = {}) {
    this.#ctx = ctx;
    this.#handlers = handlers;
    this.#lastSeq = handlers.afterSeq ?? 0;
    this.#timers = createTimers(ctx.clock);
    Object.defineProperty(this, "id", { value: id, enumerable: true, writable: false });
  }

  get lastSeq() {
    return this.#lastSeq;
  }

  get closed() {
    return this.#closed;
  }

  /** Delivered messages in seq order, then the ones still sending or failed. */
  get messages() {
    return [...this.#delivered, ...this.#pending.values()];
  }

  /** @internal */
  subscribe(pusher) {
    const on = (event, fn) => {
      this.#channel.bind(event, fn);
      this.#bindings.push([event, fn]);
    };
    this.#channel = pusher.subscribe(channelName(this.id));
    // pusher-js resubscribes by itself after every reconnect and fires this again; anything
    // published while we were away is only in the history, hence a catch-up each time.
    on("pusher:subscription_succeeded", () => {
      this.#authFailureStatus = null;
      if (this.subscriptionFailed) {
        this.subscriptionFailed = false;
        this.#ctx.pollingNeedChanged();
      }
      this.requestCatchUp();
    });
    on("pusher:subscription_error", (info) => {
      const status = this.#authFailureStatus ?? info?.status ?? 0;
      this.#report(
        new ApiError(`subscription to ${channelName(this.id)} failed`, {
          status,
          code: "subscription_failed",
          cause: info,
        }),
      );
      if (!PERMANENT_AUTH_STATUS.has(status) && !this.subscriptionFailed) {
        this.subscriptionFailed = true;
        this.#ctx.pollingNeedChanged();
      }
    });
    on("new-message", (data) => {
      this.#ctx.stats.events += 1;
      this.#ingest(data);
      this.#flush();
    });
    on("message-received", (data) => this.#markReceived(parseObject(data)));
  }

  /** @internal the auth request for this channel failed with this HTTP status. */
  authFailed(status) {
    this.#authFailureStatus = status;
  }

  /** @internal fetch history after lastSeq to the end; coalesces with a running fetch. */
  requestCatchUp() {
    if (this.#closed) return;
    if (this.#fetching) {
      this.#followUp = true;
      return;
    }
    this.#startFetch("catchUp");
  }

  /** @internal one poll; skipped while any fetch runs, since that fetch covers it. */
  poll() {
    if (this.#closed || this.#fetching) return;
    this.#startFetch("poll");
  }

  /** @internal the optimistic row of a send that has not been answered yet. */
  addPending({ recipientId, content, clientMessageId }) {
    if (this.#closed || this.#mineByClientId.has(clientMessageId)) return;
    const existing = this.#pending.get(clientMessageId);
    if (existing && existing.state !== "failed") return;
    this.#pending.set(
      clientMessageId,
      row(
        { conversationId: this.id, senderId: this.#ctx.userId, recipientId, content, clientMessageId },
        { state: "sending", mine: true },
      ),
    );
    this.#changed = true;
    this.#flush();
  }

  /** @internal the send's answer: the saved message takes the optimistic row's place. */
  acceptSent(message) {
    if (this.#closed) return;
    this.#ingest(message);
    this.#flush();
  }

  /** @internal the send landed in another conversation than this row was shown in. */
  dropPending(clientMessageId) {
    if (this.#closed || !this.#pending.delete(clientMessageId)) return;
    this.#changed = true;
    this.#flush();
  }

  /** @internal */
  failPending(clientMessageId, error) {
    const pending = this.#pending.get(clientMessageId);
    if (this.#closed || !pending || pending.state !== "sending") return;
    this.#pending.set(
      clientMessageId,
      Object.freeze({ ...pending, state: "failed", error: { status: error.status, code: error.code, message: error.message } }),
    );
    this.#changed = true;
    this.#flush();
  }

  /** @internal the message this user sent with this clientMessageId, if it was delivered. */
  deliveredMine(clientMessageId) {
    return this.#mineByClientId.get(clientMessageId) ?? null;
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#controller.abort(closedError());
    this.#timers.clearAll();
    if (this.#channel) {
      for (const [event, fn] of this.#bindings) this.#channel.unbind?.(event, fn);
      this.#ctx.pusher.unsubscribe(channelName(this.id));
    }
    this.#bindings = [];
    this.#ctx.conversationClosed(this);
  }

  // ---- ordering -------------------------------------------------------------------------

  #ingest(raw) {
    if (this.#closed) return;
    const message = parseMessage(raw);
    if (!message || message.conversationId !== this.id) return;
    this.#learnPeer(message);
    if (message.seq <= this.#lastSeq || this.#buffer.has(message.seq)) {
      this.#ctx.stats.duplicates += 1;
      return;
    }
    if (message.seq === this.#lastSeq + 1) {
      this.#deliver(message);
      this.#drain();
      return;
    }
    this.#buffer.set(message.seq, message);
    this.#markPendingSaved(message);
    // A fetch that is running (or queued) asks from an older lastSeq and may well return the
    // missing messages; only when it cannot cover the hole is it a gap of its own.
    if (!this.#fetching && !this.#followUp) {
      this.#countGap();
      this.#startFetch("catchUp");
    }
  }

  #drain() {
    for (let next = this.#buffer.get(this.#lastSeq + 1); next; next = this.#buffer.get(this.#lastSeq + 1)) {
      this.#buffer.delete(next.seq);
      this.#deliver(next);
    }
    if (this.#buffer.size === 0) this.#gapAtSeq = null;
  }

  #deliver(message) {
    const { userId, stats } = this.#ctx;
    this.#lastSeq = message.seq;
    const mine = message.senderId === userId;
    const receivedAt = this.#receivedEarly.get(message.id) ?? null;
    this.#receivedEarly.delete(message.id);
    if (mine && message.clientMessageId !== null) {
      this.#pending.delete(message.clientMessageId);
      this.#mineByClientId.set(message.clientMessageId, message);
    }
    this.#indexById.set(message.id, this.#delivered.length);
    // Messages from the other participant have, by definition, reached this user.
    const state = !mine || receivedAt !== null ? "received" : "saved";
    this.#delivered.push(row(message, { state, mine, receivedAt }));
    this.#changed = true;
    stats.delivered += 1;
    this.#call("onMessage", message);
    this.#ctx.delivered(message);
  }

  #markPendingSaved(message) {
    if (message.senderId !== this.#ctx.userId || message.clientMessageId === null) return;
    const pending = this.#pending.get(message.clientMessageId);
    if (!pending) return;
    const receivedAt = this.#receivedEarly.get(message.id) ?? null;
    this.#pending.set(
      message.clientMessageId,
      row(message, { state: receivedAt !== null ? "received" : "saved", mine: true, receivedAt }),
    );
    this.#changed = true;
  }

  #markReceived(data) {
    if (this.#closed || !data || !isId(data.id)) return;
    if (data.conversationId !== undefined && data.conversationId !== this.id) return;
    const receivedAt = data.receivedAt ?? null;
    const index = this.#indexById.get(data.id);
    if (index !== undefined) {
      const current = this.#delivered[index];
      if (!current.mine || current.state === "received") return;
      this.#delivered[index] = Object.freeze({ ...current, state: "received", receivedAt });
    } else {
      const entry = [...this.#pending.entries()].find(([, r]) => r.id === data.id);
      if (!entry) {
        // Below lastSeq it is a message before this window (afterSeq), not one still to come.
        if (isId(data.seq) && data.seq <= this.#lastSeq) return;
        // The receipt overtook the message itself (Pusher does not keep order). Bounded, so
        // receipts for messages that never show up cannot pile up.
        this.#receivedEarly.set(data.id, receivedAt);
        if (this.#receivedEarly.size > MAX_EARLY_RECEIPTS) {
          this.#receivedEarly.delete(this.#receivedEarly.keys().next().value);
        }
        return;
      }
      this.#pending.set(entry[0], Object.freeze({ ...entry[1], state: "received", receivedAt }));
    }
    this.#changed = true;
    this.#flush();
  }

  #learnPeer(message) {
    if (this.peerId !== null) return;
    const { userId } = this.#ctx;
    if (message.senderId === userId) this.peerId = message.recipientId;
    else if (message.recipientId === userId) this.peerId = message.senderId;
  }

  #countGap() {
    // One hole is one gap, however many messages pile up behind it or how often it is
    // re-fetched; a hole further on (lastSeq moved) is a new one.
    if (this.#gapAtSeq === this.#lastSeq) return;
    this.#gapAtSeq = this.#lastSeq;
    this.#ctx.stats.gaps += 1;
  }

  // ---- fetching history -----------------------------------------------------------------

  #startFetch(kind) {
    this.#timers.clear(this.#retry);
    this.#retry = null;
    this.#fetching = true;
    this.#fetch(kind);
  }

  async #fetch(kind) {
    const { stats, http, pageSize } = this.#ctx;
    const startSeq = this.#lastSeq;
    if (kind === "catchUp") stats.catchUps += 1;
    let failure = null;
    try {
      let afterSeq = this.#lastSeq;
      for (;;) {
        if (kind === "poll") stats.polls += 1;
        const page = await http.request(
          "GET",
          `/api/conversations/${this.id}/messages?afterSeq=${afterSeq}&limit=${pageSize}`,
          { signal: this.#controller.signal },
        );
        if (this.#closed) return;
        // Each message is compared with lastSeq as it is now, not as it was when the request
        // left: events that arrived meanwhile are neither lost nor delivered twice.
        for (const message of Array.isArray(page?.messages) ? page.messages : []) this.#ingest(message);
        this.#flush();
        const next = page?.nextAfterSeq;
        if (!Number.isSafeInteger(next) || next <= afterSeq) break;
        afterSeq = Math.max(next, this.#lastSeq);
      }
    } catch (err) {
      if (this.#closed) return;
      failure = err;
    } finally {
      this.#fetching = false;
    }
    this.#afterFetch(kind, startSeq, failure);
  }

  #afterFetch(kind, startSeq, failure) {
    if (this.#followUp) {
      this.#followUp = false;
      this.#startFetch("catchUp");
      return;
    }
    const { retry } = this.#ctx;
    if (failure) {
      this.#report(failure);
      // The request already used up its own retries; try again later rather than leave
      // buffered messages stuck behind a hole until some unrelated event arrives.
      if (failure.retryable && (kind === "catchUp" || this.#buffer.size > 0)) {
        this.#scheduleCatchUp(retry.maxDelayMs);
      }
      return;
    }
    if (this.#buffer.size === 0) {
      this.#fruitlessFetches = 0;
      return;
    }
    // The fetch is done and a hole is still there: the missing messages were not committed
    // when the server answered, or were lost. That is a gap in its own right.
    this.#countGap();
    if (this.#lastSeq > startSeq) this.#fruitlessFetches = 0;
    else this.#fruitlessFetches += 1;
    // Back off only when fetching keeps bringing nothing, so a lagging history cannot turn
    // into a request loop.
    if (this.#fruitlessFetches <= 1) this.#startFetch("catchUp");
    else this.#scheduleCatchUp(backoffDelay(this.#fruitlessFetches - 1, retry, this.#ctx.random));
  }

  #scheduleCatchUp(delayMs) {
    this.#timers.clear(this.#retry);
    this.#retry = this.#timers.set(() => {
      this.#retry = null;
      this.requestCatchUp();
    }, delayMs);
  }

  // ---- handlers ---------------------------------------------------------------------------

  #flush() {
    if (!this.#changed || this.#closed) return;
    this.#changed = false;
    this.#call("onChange", this.messages);
  }

  #call(name, arg) {
    const fn = this.#handlers[name];
    if (typeof fn !== "function") return;
    try {
      fn(arg);
    } catch (err) {
      // A throwing UI handler must not wedge delivery; surface it like an event listener would.
      this.#report(err, true);
    }
  }

  #report(error, rethrow = false) {
    const onError = this.#handlers.onError;
    if (typeof onError === "function") {
      try {
        onError(error);
        return;
      } catch (err) {
        error = err;
        rethrow = true;
      }
    }
    if (rethrow) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}
