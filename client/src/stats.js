// One mutable counter object is shared by every module of a client; callers only ever get
// copies, so a UI that keeps one cannot see it change under it, or change the counters.
export const STAT_NAMES = Object.freeze([
  "events",
  "duplicates",
  "gaps",
  "catchUps",
  "polls",
  "retries",
  "receipts",
  "sends",
  "sendFailures",
  "delivered",
]);

export function createStats() {
  return Object.fromEntries(STAT_NAMES.map((name) => [name, 0]));
}

export function snapshotStats(stats) {
  return { ...stats };
}
