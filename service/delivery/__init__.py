"""Getting stored messages to Pusher: the event shape, the queue and the calls, the failure
table, the relay, the delivery mode. `setup(app)` wires it; the getters hand it to handlers.
"""

from .setup import dispatcher_of, mode_watcher_of, pusher_of, receipt_notices_of, setup

__all__ = ["dispatcher_of", "mode_watcher_of", "pusher_of", "receipt_notices_of", "setup"]
