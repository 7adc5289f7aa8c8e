/** A stored message, exactly as the service sends it (send response, history, Pusher). */
export interface Message {
  id: number;
  conversationId: number;
  /** 1, 2, 3 … per conversation, no gaps, no repeats. */
  seq: number;
  senderId: number;
  recipientId: number;
  content: string;
  clientMessageId: string | null;
  /** RFC 3339, UTC. */
  createdAt: string;
}

export type ChatMessageState = "sending" | "saved" | "received" | "failed";

/**
 * A row for the UI. Delivered rows come in seq order; rows still sending (id and seq null)
 * or failed come after them. Rows are frozen: a change replaces the row object.
 */
export interface ChatMessage {
  id: number | null;
  conversationId: number;
  seq: number | null;
  senderId: number;
  recipientId: number;
  content: string;
  clientMessageId: string | null;
  createdAt: string | null;
  /**
   * sending: optimistic, not answered yet; saved: stored by the service; received: for own
   * messages, the recipient posted a receipt; messages from the other participant are
   * always "received"; failed: the send gave up (see `error`).
   */
  state: ChatMessageState;
  /** Sent by this client's user. */
  mine: boolean;
  /** When the recipient's receipt was recorded (from the `message-received` event). */
  receivedAt: string | null;
  /** Why the send failed; null otherwise. */
  error: { status: number; code: string; message: string } | null;
}

export interface Stats {
  /** `new-message` Pusher events received (duplicates included). */
  events: number;
  /** Messages seen again from any source (Pusher, history, own send response) and dropped. */
  duplicates: number;
  /** Holes in seq that no running fetch could cover. */
  gaps: number;
  /** History catch-up runs (each may fetch several pages). */
  catchUps: number;
  /** History requests made by polling. */
  polls: number;
  /** HTTP attempts repeated after a retryable failure (any request). */
  retries: number;
  /** Receipts the service accepted. */
  receipts: number;
  /** send() calls. */
  sends: number;
  /** send() calls that finally failed. */
  sendFailures: number;
  /** onMessage calls. */
  delivered: number;
}

export interface PusherOptions {
  key: string;
  /** Default "mt1". */
  cluster?: string;
  wsHost?: string;
  wsPort?: number;
  wssPort?: number;
  forceTLS?: boolean;
  enabledTransports?: string[];
  /** Anything else is passed to pusher-js unchanged (except channelAuthorization). */
  [option: string]: unknown;
}

export interface RetryOptions {
  /** Total attempts per request, the first included. Default 8. */
  attempts?: number;
  /** Default 250. */
  baseDelayMs?: number;
  /** Default 5000; caps the backoff, not a server's Retry-After. */
  maxDelayMs?: number;
}

/** Injectable time source; default: Date.now and the global timers. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export type PusherConstructor = new (key: string, options: object) => any;

export interface ConnectOptions {
  baseUrl: string;
  /** A bearer JWT, or a function asked before every request (so it may refresh). */
  token: string | (() => string | Promise<string>);
  pusher: PusherOptions;
  /** Default: the token's `sub` claim (or `userClaim`), read but not verified. Required when `token` returns a Promise. */
  userId?: number;
  /** The claim holding the user id when `userId` is not given. Default "sub". */
  userClaim?: string;
  /** Post a receipt once a message addressed to this user was delivered to onMessage. Default false. */
  receipts?: boolean;
  /** History polling interval while the connection is unusable. Default 2000. */
  pollIntervalMs?: number;
  /** How long "connecting" may last before it counts as unusable. Default 3000. */
  connectingGraceMs?: number;
  /** History page size, 1..200. Default 100. */
  pageSize?: number;
  retry?: RetryOptions;
  /** Per-attempt HTTP timeout; 0 disables. Default 15000. */
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
  Pusher?: PusherConstructor;
  clock?: Clock;
  /** Jitter source, default Math.random. */
  random?: () => number;
}

export interface OpenHandlers {
  /** Called once per message, in seq order. */
  onMessage?(message: Message): void;
  /** Called with a fresh array after any change. */
  onChange?(messages: ChatMessage[]): void;
  /** Fetch, subscription and handler failures (delivery keeps going). */
  onError?(error: Error): void;
  /** Messages up to this seq are already known; default 0 (the whole history). */
  afterSeq?: number;
}

export interface Conversation {
  readonly id: number;
  /** Highest seq delivered with no hole before it. */
  readonly lastSeq: number;
  readonly closed: boolean;
  /** A fresh array: delivered rows in seq order, then sending and failed rows. */
  readonly messages: ChatMessage[];
  close(): void;
}

export interface SendOptions {
  /** Where the optimistic row is shown; without it, in open conversations with this peer, if known. */
  conversationId?: number;
  /** Reuse one to retry a failed send idempotently; default a new UUID. */
  clientMessageId?: string;
}

export interface Client {
  readonly userId: number;
  readonly socketId: string | null;
  readonly connectionState: string;
  /** A snapshot copy. */
  readonly stats: Stats;
  open(conversationId: number, handlers?: OpenHandlers): Conversation;
  send(recipientId: number, content: string, options?: SendOptions): Promise<Message>;
  close(): void;
}

export function connect(options: ConnectOptions): Client;

/** What every failed request rejects with; status 0 when no HTTP answer came. */
export class ApiError extends Error {
  readonly status: number;
  /** The service's error code, or network_error, timeout, closed, aborted, token_unavailable, bad_response, http_<status>. */
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  constructor(
    message: string,
    options?: { status?: number; code?: string; retryable?: boolean; retryAfterMs?: number | null; cause?: unknown },
  );
}

export function newClientMessageId(): string;
export function userIdFromToken(token: string, claim?: string): number;
