"""PostgreSQL access: the pool, named queries, migrations and the message repository."""
