"""PostgreSQL: the database handle, named queries, numbered migrations and the stores.

`setup(app)` wires it into an app; the getters hand its stores to handlers and to delivery.
"""

from .setup import database_of, messages_of, mode_overrides_of, setup

__all__ = ["database_of", "messages_of", "mode_overrides_of", "setup"]
