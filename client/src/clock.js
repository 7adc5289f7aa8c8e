// Time is injected so tests can drive retries, polling and grace periods without waiting;
// the arrow wrappers keep browsers from throwing "Illegal invocation" on unbound timers.
export const systemClock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
});

// Every owner (client, conversation) keeps its timers in one set so close() can prove that
// nothing is left to fire: a leaked timer keeps a Node process (and a test run) alive.
export function createTimers(clock) {
  const live = new Set();
  return {
    set(fn, ms) {
      const handle = { id: null };
      handle.id = clock.setTimeout(() => {
        live.delete(handle);
        fn();
      }, Math.max(0, ms));
      live.add(handle);
      return handle;
    },
    clear(handle) {
      if (handle && live.delete(handle)) clock.clearTimeout(handle.id);
    },
    clearAll() {
      for (const handle of live) clock.clearTimeout(handle.id);
      live.clear();
    },
    get size() {
      return live.size;
    },
  };
}

// Rejects with the signal's reason as soon as it aborts, and clears its timer then, so a
// retry wait never outlives close().
export function sleep(clock, ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(id);
      reject(signal.reason);
    };
    const id = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
