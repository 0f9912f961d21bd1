"""Start a shared test database empty: drop what is there, then make the tables the way a release does."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, text

from park.migrations import upgrade_schema


def fresh_schema(engine: Engine) -> None:
    """Drop every table (alembic_version included) and the ledger's trigger function, then upgrade to the newest
    migration: the tables are the migrations', as in production, never the models' create_all."""
    reflected = MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP FUNCTION IF EXISTS carbon_quota_ledger_append_only() CASCADE"))
    upgrade_schema(engine)
