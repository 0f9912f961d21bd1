"""Baseline: the metadata tables of release 0.1.0, as its `parkcarbon init` created them.

Revision ID: 0001
Revises:
Create Date: 2026-12-03

Written out table by table (never by calling the models' create_all), so that it stays what 0.1.0 made when the
models change.  Tables that already exist are left alone: a database made by release 0.1.0 has no alembic_version
table, and park.migrations.upgrade_schema runs this revision on it to create only what that release had not yet
created (0.1.0 made some tables only once a module using them was imported), after checking that the tables it
does have are 0.1.0's (park.migrations.check_baseline).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY = "carbon_quota_ledger is append-only: record a correcting movement instead"


def _lifecycle() -> list[sa.Column]:
    return [
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _recorded() -> list[sa.Column]:
    return [
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    ]


def _enterprise_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"])


def baseline_tables() -> list[tuple[str, list[sa.SchemaItem]]]:
    """(table name, columns and constraints) of release 0.1.0, parents before children."""
    return [
        ("parks", [
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("name_en", sa.String(), nullable=False),
            sa.Column("timezone", sa.String(64), nullable=False),
            sa.Column("province", sa.String(), nullable=True),
            sa.Column("grid_region", sa.String(), nullable=True),
            *_lifecycle(),
            sa.PrimaryKeyConstraint("id"),
        ]),
        ("enterprises", [
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("name_en", sa.String(), nullable=False),
            sa.Column("industry", sa.String(), nullable=False),
            sa.Column("credit_code", sa.String(), nullable=False),
            sa.Column("province", sa.String(), nullable=True),
            *_lifecycle(),
            sa.PrimaryKeyConstraint("park_id", "id"),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("workshops", [
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("name_en", sa.String(), nullable=False),
            *_lifecycle(),
            sa.PrimaryKeyConstraint("park_id", "id"),
            _enterprise_fk(),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("meters", [
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("workshop_id", sa.String(64), nullable=True),
            sa.Column("carrier", sa.String(16), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("interval_s", sa.Integer(), nullable=False),
            sa.Column("model", sa.String(), nullable=True),
            sa.Column("address", sa.String(), nullable=True),
            *_lifecycle(),
            sa.PrimaryKeyConstraint("park_id", "id"),
            _enterprise_fk(),
            sa.ForeignKeyConstraint(["park_id", "workshop_id"], ["workshops.park_id", "workshops.id"]),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("devices", [
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("workshop_id", sa.String(64), nullable=True),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("rated_voltage_v", sa.Double(), nullable=False),
            sa.Column("power_factor", sa.Double(), nullable=False),
            sa.Column("idle_current_a", sa.Double(), nullable=False),
            sa.Column("run_current_a", sa.Double(), nullable=False),
            sa.Column("interval_s", sa.Integer(), nullable=False),
            *_lifecycle(),
            sa.PrimaryKeyConstraint("park_id", "id"),
            _enterprise_fk(),
            sa.ForeignKeyConstraint(["park_id", "workshop_id"], ["workshops.park_id", "workshops.id"]),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("import_runs", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(), nullable=False),
            sa.Column("source_path", sa.String(), nullable=True),
            sa.Column("source_sha256", sa.String(64), nullable=True),
            sa.Column("added", sa.Integer(), nullable=False),
            sa.Column("updated", sa.Integer(), nullable=False),
            sa.Column("reactivated", sa.Integer(), nullable=False),
            sa.Column("deactivated", sa.Integer(), nullable=False),
            sa.Column("unchanged", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("carbon_factor_imports", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("source_path", sa.String(), nullable=True),
            sa.Column("source_sha256", sa.String(64), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
        ("carbon_factor_overrides", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("import_id", sa.Integer(), nullable=False),
            sa.Column("line", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("key", sa.String(40), nullable=False),
            sa.Column("parameter", sa.String(32), nullable=False),
            sa.Column("region", sa.String(32), nullable=False),
            sa.Column("enterprise", sa.String(64), nullable=True),
            sa.Column("value", sa.String(64), nullable=False),
            sa.Column("unit", sa.String(32), nullable=False),
            sa.Column("valid_from", sa.String(10), nullable=False),
            sa.Column("valid_to", sa.String(10), nullable=False),
            sa.Column("data_year", sa.String(4), nullable=False),
            sa.Column("source", sa.Text(), nullable=False),
            sa.Column("publication", sa.Text(), nullable=False),
            sa.Column("published", sa.String(10), nullable=False),
            sa.Column("verified", sa.String(5), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["import_id"], ["carbon_factor_imports.id"]),
        ]),
        ("carbon_output_values", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("month", sa.Date(), nullable=False),
            sa.Column("output_value_10k_cny", sa.Double(), nullable=False),
            sa.Column("source", sa.String(128), nullable=False),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
        ]),
        ("carbon_product_output", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("month", sa.Date(), nullable=False),
            sa.Column("product", sa.String(128), nullable=False),
            sa.Column("quantity", sa.Double(), nullable=False),
            sa.Column("unit", sa.String(32), nullable=False),
            sa.Column("workshop_id", sa.String(64), nullable=True),
            sa.Column("source", sa.String(128), nullable=False),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
        ]),
        ("carbon_activity_records", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("workshop_id", sa.String(64), nullable=True),
            sa.Column("carrier", sa.String(40), nullable=False),
            sa.Column("flow", sa.String(8), nullable=False),
            sa.Column("period_start", sa.Date(), nullable=False),
            sa.Column("period_end", sa.Date(), nullable=False),
            sa.Column("quantity", sa.Double(), nullable=False),
            sa.Column("unit", sa.String(32), nullable=False),
            sa.Column("source", sa.String(128), nullable=False),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
        ]),
        ("carbon_instruments", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("quantity_mwh", sa.Double(), nullable=False),
            sa.Column("period_start", sa.Date(), nullable=False),
            sa.Column("period_end", sa.Date(), nullable=False),
            sa.Column("reference", sa.String(256), nullable=False),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
        ]),
        ("carbon_quota_plans", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("method", sa.String(16), nullable=False),
            sa.Column("absolute_t", sa.Double(), nullable=True),
            sa.Column("benchmark_t_per_unit", sa.Double(), nullable=True),
            sa.Column("unit", sa.String(32), nullable=False),
            sa.Column("base_output", sa.Double(), nullable=True),
            sa.Column("pre_share", sa.Double(), nullable=False),
            sa.Column("correction", sa.Double(), nullable=False),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
        ]),
        ("carbon_quota_ledger", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("amount_t", sa.Double(), nullable=False),
            sa.Column("price_cny_per_t", sa.Double(), nullable=True),
            sa.Column("reference", sa.String(256), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("corrects_id", sa.Integer(), nullable=True),
            *_recorded(),
            sa.PrimaryKeyConstraint("id"),
            _enterprise_fk(),
            sa.ForeignKeyConstraint(["corrects_id"], ["carbon_quota_ledger.id"]),
        ]),
        ("carbon_restatements", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(128), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("factor_import_id", sa.Integer(), nullable=True),
            sa.Column("level", sa.String(16), nullable=False),
            sa.Column("enterprise", sa.String(64), nullable=True),
            sa.Column("period", sa.String(16), nullable=False),
            sa.Column("metric", sa.String(40), nullable=False),
            sa.Column("old_value", sa.Double(), nullable=True),
            sa.Column("new_value", sa.Double(), nullable=True),
            sa.Column("old_factors", sa.Text(), nullable=False),
            sa.Column("new_factors", sa.Text(), nullable=False),
            sa.Column("old_registry", sa.String(64), nullable=False),
            sa.Column("new_registry", sa.String(64), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
            sa.ForeignKeyConstraint(["factor_import_id"], ["carbon_factor_imports.id"]),
        ]),
        ("users", [
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=True),
            sa.Column("display_name", sa.String(128), nullable=False),
            sa.Column("password_hash", sa.String(256), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("failed_logins", sa.Integer(), nullable=False),
            sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("username"),
            _enterprise_fk(),
        ]),
        ("audit_events", [
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("username", sa.String(64), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target", sa.String(256), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        ]),
        ("alert_acks", [
            sa.Column("park_id", sa.String(64), nullable=False),
            sa.Column("key", sa.String(320), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("enterprise_id", sa.String(64), nullable=True),
            sa.Column("acknowledged_by", sa.String(64), nullable=False),
            sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("park_id", "key"),
            sa.ForeignKeyConstraint(["park_id"], ["parks.id"]),
        ]),
    ]


def _ledger_append_only() -> None:
    """The ledger refuses UPDATE and DELETE in the database itself, whatever the client."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER carbon_quota_ledger_no_{verb.lower()} BEFORE {verb} ON carbon_quota_ledger "
                       f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION carbon_quota_ledger_append_only() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER carbon_quota_ledger_append_only BEFORE UPDATE OR DELETE ON carbon_quota_ledger "
                   "FOR EACH ROW EXECUTE FUNCTION carbon_quota_ledger_append_only()")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, items in baseline_tables():
        if name in existing:
            continue
        op.create_table(name, *items)
        if name == "carbon_quota_ledger":
            _ledger_append_only()
        if name == "audit_events":
            op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS carbon_quota_ledger_append_only() CASCADE")
    for name, _items in reversed(baseline_tables()):
        op.drop_table(name)
