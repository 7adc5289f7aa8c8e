// Decides when the Pusher connection cannot be relied on, so history polling has to carry
// the conversation instead. pusher-js cycles connecting -> unavailable -> connecting while
// offline; only a connection that was usable gets the grace period again, otherwise every
// retry of pusher-js would pause polling for connectingGraceMs.
const UNUSABLE = new Set(["unavailable", "failed", "disconnected"]);
const CONNECTING = new Set(["initialized", "connecting"]);

export function watchConnection(connection, { timers, graceMs, onChange }) {
  let usable = !UNUSABLE.has(connection.state);
  let grace = null;

  const startGrace = () => {
    if (grace) return;
    grace = timers.set(() => {
      grace = null;
      set(false);
    }, graceMs);
  };
  const stopGrace = () => {
    timers.clear(grace);
    grace = null;
  };
  const set = (next) => {
    if (next === usable) return;
    usable = next;
    onChange(usable);
  };

  const onStateChange = (change) => {
    const current = change?.current ?? connection.state;
    if (current === "connected") {
      stopGrace();
      set(true);
    } else if (CONNECTING.has(current)) {
      if (usable) startGrace();
    } else if (UNUSABLE.has(current)) {
      stopGrace();
      set(false);
    }
  };

  if (usable && CONNECTING.has(connection.state)) startGrace();
  connection.bind("state_change", onStateChange);

  return {
    get usable() {
      return usable;
    },
    stop() {
      stopGrace();
      connection.unbind?.("state_change", onStateChange);
    },
  };
}
