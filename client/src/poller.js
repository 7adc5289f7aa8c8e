// A chain of timeouts rather than setInterval: a tick never overlaps a slow previous one's
// timer bookkeeping, and stop() leaves nothing scheduled. The first tick is immediate
// because polling starts exactly when realtime delivery has stopped being trustworthy.
export function createPoller({ timers, intervalMs, tick }) {
  let next = null;
  let running = false;
  const loop = () => {
    next = null;
    tick();
    if (running) next = timers.set(loop, intervalMs);
  };
  return {
    get running() {
      return running;
    },
    start() {
      if (running) return;
      running = true;
      loop();
    },
    stop() {
      running = false;
      timers.clear(next);
      next = null;
    },
  };
}
