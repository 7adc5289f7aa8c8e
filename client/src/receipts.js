// Receipts tell the sender "shown on the recipient's screen". They are best effort: a lost
// one only delays a tick mark, so failures are swallowed after one retry, and the server
// only counts the first per message, so each id is posted at most once from here.
// The concurrency cap keeps a long catch-up from firing hundreds of requests at once.
export function createReceipts({ http, stats, signal, concurrency = 4 }) {
  const posted = new Set();
  const queue = [];
  let active = 0;

  const pump = () => {
    while (active < concurrency && queue.length > 0 && !signal.aborted) {
      const id = queue.shift();
      active += 1;
      http
        .request("POST", `/api/messages/${id}/receipt`, { signal, attempts: 2 })
        .then(
          () => {
            stats.receipts += 1;
          },
          () => {},
        )
        .finally(() => {
          active -= 1;
          pump();
        });
    }
  };

  return {
    post(messageId) {
      if (posted.has(messageId)) return;
      posted.add(messageId);
      queue.push(messageId);
      pump();
    },
  };
}
