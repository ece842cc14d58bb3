"""Create and migrate the archive at sink start: database, tables, new columns, analyst views.

Idempotent: ``CREATE ... IF NOT EXISTS`` for tables and materialized views, ``CREATE OR REPLACE``
for plain views, and ``ADD COLUMN IF NOT EXISTS`` for fields that a schema gained since the table
was created (Avro evolution only adds fields with defaults, so old rows read the default). A
column whose type differs from the schema is reported, never changed automatically. A
materialized view whose query changed (it reads another source table, as the OHLCV chain 1 s -> 1 m
-> 1 h did, or it filters differently) is rewired with ``ALTER TABLE ... MODIFY QUERY``, atomic for
inserts running meanwhile; the query kept by the engine is compared with ``formatQuerySingleLine`` of
the one in ``views.sql``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from clickhouse_connect.driver.client import Client

from sinks.ddl import DEAD_LETTERS_SQL, META_COLUMNS, TableSpec, all_table_specs

log = logging.getLogger(__name__)
VIEWS_SQL = Path(__file__).parent / "views.sql"
_MATERIALIZED = re.compile(r"CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+TO\s+\w+\s+AS\s+(SELECT\b.*)",
                           re.DOTALL)
_CREATE_NAME = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|MATERIALIZED\s+VIEW|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)")


@dataclass
class MigrationReport:
    """What a migration did."""

    created_tables: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)
    type_mismatches: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    rewired_views: list[str] = field(default_factory=list)


def sql_statements(text: str) -> list[str]:
    """Split a SQL file into statements on ``;`` at line ends, dropping comment-only chunks."""
    statements = []
    for chunk in re.split(r";\s*$", text, flags=re.MULTILINE):
        body = "\n".join(line for line in chunk.splitlines() if not line.strip().startswith("--")).strip()
        if body:
            statements.append(body)
    return statements


def dedup_view_sql(spec: TableSpec) -> str:
    """Return the analyst view ``v_<table>``: the table read FINAL, so redeliveries never show."""
    return f"CREATE OR REPLACE VIEW v_{spec.name} AS SELECT * FROM {spec.name} FINAL"


def _existing_columns(client: Client, database: str) -> dict[str, dict[str, str]]:
    result = client.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}", parameters={"db": database}
    )
    tables: dict[str, dict[str, str]] = {}
    for table, name, ch_type in result.result_rows:
        tables.setdefault(table, {})[name] = ch_type
    return tables


def _view_sources(client: Client, database: str) -> dict[str, str]:
    # the table each existing materialized view is fed by (ClickHouse lists it as a dependency of its source)
    result = client.query(
        "SELECT name, dependencies_table FROM system.tables WHERE database = {db:String}", parameters={"db": database}
    )
    return {view: source for source, views in result.result_rows for view in views}


def _view_queries(client: Client, database: str) -> dict[str, str]:
    # each existing materialized view's SELECT as the engine keeps it: one line, tables named with the database
    result = client.query(
        "SELECT name, as_select FROM system.tables WHERE database = {db:String} AND engine = 'MaterializedView'",
        parameters={"db": database},
    )
    return {name: re.sub(rf"\b{re.escape(database)}\.", "", select) for name, select in result.result_rows}


def _single_line(client: Client, select: str) -> str:
    return client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": select}).result_rows[0][0]


def _normalise(ch_type: str) -> str:
    return ch_type.replace(" ", "")


def migrate(client: Client, database: str) -> MigrationReport:
    """Bring ``database`` up to the current schemas and views; ``client`` must use ``database``."""
    report = MigrationReport()
    existing = _existing_columns(client, database)
    for spec in all_table_specs():
        if spec.name not in existing:
            client.command(spec.create_sql())
            report.created_tables.append(spec.name)
            continue
        previous = None
        for column in spec.columns:
            have = existing[spec.name].get(column.name)
            if have is None:
                after = f" AFTER `{previous}`" if previous else " FIRST"
                client.command(f"ALTER TABLE {spec.name} ADD COLUMN IF NOT EXISTS {column.definition()}{after}")
                report.added_columns.append(f"{spec.name}.{column.name}")
            elif _normalise(have) != _normalise(column.type):
                report.type_mismatches.append(f"{spec.name}.{column.name}: table {have}, schema {column.type}")
            previous = column.name
        for name, definition in META_COLUMNS:
            if name not in existing[spec.name]:
                client.command(f"ALTER TABLE {spec.name} ADD COLUMN IF NOT EXISTS `{name}` {definition}")
                report.added_columns.append(f"{spec.name}.{name}")
    if "dead_letters" not in existing:
        client.command(DEAD_LETTERS_SQL)
        report.created_tables.append("dead_letters")
    elif "topic_id" not in existing["dead_letters"]:
        client.command("ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS `topic_id` LowCardinality(String) AFTER topic")
        report.added_columns.append("dead_letters.topic_id")
    for spec in all_table_specs():
        client.command(dedup_view_sql(spec))
        report.views.append(f"v_{spec.name}")
    sources, queries = _view_sources(client, database), _view_queries(client, database)
    for statement in sql_statements(VIEWS_SQL.read_text()):
        client.command(statement)
        materialized = _MATERIALIZED.match(statement)
        if materialized:
            name, select = materialized.groups()
            wanted = re.findall(r"\bFROM\s+(\w+)", select)[-1]
            changed = name in queries and queries[name] != _single_line(client, select)
            if sources.get(name, wanted) != wanted or changed:
                client.command(f"ALTER TABLE {name} MODIFY QUERY {select}")
                report.rewired_views.append(name)
        match = _CREATE_NAME.match(statement)
        if match and not match.group(1).endswith("_state"):
            report.views.append(match.group(1))
    for mismatch in report.type_mismatches:
        log.warning("column type differs from schema; left unchanged", extra={"column": mismatch})
    log.info("archive migrated", extra={"database": database, "created_tables": report.created_tables,
                                        "added_columns": report.added_columns, "rewired_views": report.rewired_views})
    return report


def ensure_database(admin: Client, database: str) -> None:
    """Create ``database`` if missing (``admin`` may use any database)."""
    if not re.fullmatch(r"\w+", database):
        raise ValueError(f"database name {database!r} must be a plain identifier")
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
