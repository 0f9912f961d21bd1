"""Alembic environment of the metadata database, configured by park.migrations (no alembic.ini).

The caller passes an open connection in `config.attributes["connection"]`; `target_metadata` (the models, for
`--autogenerate`) is loaded only when asked for, since running migrations never needs the models.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
target_metadata = None
if config.attributes.get("autogenerate"):
    from park.migrations import model_metadata

    target_metadata = model_metadata()

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
