"""Two database roles: the owner, which owns every table, and the application role, which may
add to history but never change it (ADR 10).

``reintegration db create-roles`` runs :func:`create_roles` on an administrator's connection
(a superuser, or the database's owner with CREATEROLE). It

1. creates both roles, or brings existing ones back to what they must be (no superuser, no
   CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS; the application role a member of nothing);
2. gives the owner what already exists (a deployment that ran as one role until now);
3. creates or upgrades every schema, table, index and function of this release *as the
   owner* (``SET ROLE`` through the connection's ``options``, so the owner needs no login):
   the statements each process runs at start-up when it manages the schema itself;
4. grants the application role :data:`APPLICATION_GRANTS`, full DML on the read models and
   nothing else: what it held before on these tables is revoked first, in the same transaction.

Run again after an upgrade, it creates what is new and grants it; tables named in the grants
that do not exist yet are skipped and named.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.errors import DuplicateObject, InsufficientPrivilege

from application.store import ReintegrationApplication
from infra.config import ConfigurationError
from infra.postgres import eventsourcing_env, schema_lock
from infra.projection_admin import PROJECTIONS
from infra.relay import PublishedPositions
from projections import runner
from projections.admin import REBUILD_SUFFIX


@dataclass(frozen=True)
class Grant:
    """What the application role may do to one table. ``{store}`` is the event store's schema
    and ``{events}`` its table. ``optional``: a table another change adds, granted once it
    exists (skipped until then)."""

    table: str
    privileges: tuple[str, ...]
    optional: bool = False


APPEND_ONLY = ("SELECT", "INSERT")

APPLICATION_GRANTS: tuple[Grant, ...] = (
    # History and the evidence about it: added to and read, never changed.
    Grant("{store}.{events}", APPEND_ONLY),
    Grant("{store}.{events}_chain", APPEND_ONLY),
    Grant("{store}.{events}_household_origins", APPEND_ONLY),
    # Snapshots of long-lived aggregates: derived from the log, and checked against it on
    # load and by `audit verify` (infra/snapshots.py); added, never changed.
    Grant("{store}.{snapshots}", APPEND_ONLY),
    Grant("audit.checkpoints", APPEND_ONLY),
    Grant("audit.checkpoint_publications", APPEND_ONLY),
    Grant("audit.access_log", APPEND_ONLY),
    # The transparency log and its witnesses (issue 16); a tile is rewritten as it fills.
    Grant("audit.tlog_tiles", ("SELECT", "INSERT", "UPDATE"), optional=True),
    Grant("audit.tlog_leaves", APPEND_ONLY, optional=True),
    Grant("audit.cosignatures", APPEND_ONLY, optional=True),
    Grant("audit.checkpoint_timestamps", APPEND_ONLY, optional=True),
    # Bookkeeping that expires, not history: keyed commands' answers (deleted after 24 hours),
    # and where the relay got to in Kafka (the latest row updated, rows kept an hour).
    Grant("{store}.{events}_idempotency_keys", ("SELECT", "INSERT", "DELETE")),
    Grant("{store}.{events}_published", ("SELECT", "INSERT", "UPDATE", "DELETE")),
)

READ_MODEL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
"""On every table of every projection's schema (its rows, stored positions, dead letters and
parked events): read models are derived from the log and rebuilt from it."""

FUNCTIONS = ("{events}_lock", "{events}_extend_chain")
"""What the application role may call, in the event store's schema (no arguments): the write
lock (a SECURITY DEFINER function of the owner) and the chain's extension (run as the caller:
it inserts into the chain and the origins)."""

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SAFE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


class RolesError(Exception):
    """The roles cannot be created as asked (bad input, or not an administrator)."""


@dataclass(frozen=True)
class Role:
    name: str
    password: str | None = None

    def __post_init__(self) -> None:
        if not ROLE_NAME.fullmatch(self.name):
            raise RolesError(
                f"role name {self.name!r} is not 1 to 63 lower-case letters, digits and _ "
                "(starting with a letter or _)"
            )


@dataclass
class Outcome:
    """What :func:`create_roles` did (no password, ever)."""

    roles: dict[str, str] = field(default_factory=dict)  # name -> created, updated, unchanged
    given_to_owner: int = 0  # objects that changed hands
    granted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # named in the grants, not there yet


@dataclass(frozen=True)
class EventStoreSchema:
    """The event store's schema, table and DDL, as the library and the chain define them."""

    schema: str
    events: str
    statements: tuple[sql.Composed, ...]
    owned_names: tuple[str, ...]  # the library's function and type, beside the events table

    def name(self, template: str) -> str:
        return template.format(
            store=self.schema, events=self.events, snapshots=snapshots_table(self.events)
        )

    def table(self, template: str) -> sql.Identifier:
        schema, _, table = self.name(template).partition(".")
        return sql.Identifier(schema, table)

    def function(self, template: str) -> sql.Composed:
        return sql.SQL("{}()").format(sql.Identifier(self.schema, self.name(template)))


def snapshots_table(events: str) -> str:
    """The library's snapshots table beside an application's events table."""
    return events.removesuffix("_events") + "_snapshots"


def event_store_schema(database_url: str) -> EventStoreSchema:
    """The statements the library's ``CREATE_TABLE`` runs (with the chain's), read from a
    recorder built without running them."""
    app = ReintegrationApplication(env=eventsourcing_env(database_url, 1, manages_schema=False))
    try:
        recorder: Any = app.recorder
        snapshots: Any = app.snapshots.recorder if app.snapshots is not None else None
        return EventStoreSchema(
            recorder.datastore.schema,
            recorder.events_table_name,
            tuple(recorder.sql_create_statements)
            + (tuple(snapshots.sql_create_statements) if snapshots is not None else ()),
            (
                recorder.pg_function_name_insert_events,
                recorder.stored_event_type_name,
                *([snapshots.events_table_name] if snapshots is not None else []),
            ),
        )
    finally:
        app.close()


def as_role(database_url: str, role: str) -> str:
    """The URL of the same connection acting as ``role`` from its start (``SET ROLE``)."""
    params = conninfo_to_dict(database_url)
    options = [str(params["options"])] if params.get("options") else []
    params["options"] = " ".join([*options, f"-c role={role}"])
    return make_conninfo("", **params)


def create_roles(database_url: str, owner: Role, app: Role) -> Outcome:
    """Create (or repair) both roles, the schema as the owner, and the application's grants."""
    if owner.name == app.name:
        raise RolesError("the owner and the application role must be two roles")
    store = event_store_schema(database_url)
    outcome = Outcome()
    with psycopg.connect(database_url, autocommit=True) as conn:
        admin = _administrator(conn, owner, app)
        outcome.roles[owner.name] = _ensure_role(conn, owner, login=None)
        outcome.roles[app.name] = _ensure_role(conn, app, login=True)
        with conn.transaction():
            _act_as(conn, admin, owner.name)
            _separate(conn, owner.name, app.name)
            _database_privileges(conn, owner.name, app.name, store.schema)
            outcome.given_to_owner = _give_to_owner(conn, owner.name, store)
    owner_url = as_role(database_url, owner.name)
    create_schema(owner_url, store)
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.transaction():
        outcome.granted, outcome.skipped = grant(conn, app.name, store)
    return outcome


def create_schema(database_url: str, store: EventStoreSchema) -> None:
    """Every schema, table, index and function of this release, created or brought up to
    date by the role ``database_url`` acts as: what each process does at start-up when it
    manages the schema, all at once."""
    from infra import tamper_evidence, timestamping  # loads the cryptography package

    with schema_lock(database_url), psycopg.connect(database_url, autocommit=True) as conn:
        # As the library's create_table: each type in a transaction of its own (there is no
        # CREATE TYPE IF NOT EXISTS), then the rest in one.
        types = [s for s in store.statements if "CREATE TYPE" in s.as_string()]
        others = [s for s in store.statements if "CREATE TYPE" not in s.as_string()]
        for statement in types:
            with suppress(DuplicateObject), conn.transaction():
                conn.execute(statement)
        with conn.transaction():
            for statement in others:
                conn.execute(statement)
    with psycopg.connect(database_url, autocommit=True) as conn:
        PublishedPositions(conn, store.events).prepare()
    for projection in PROJECTIONS.values():
        runner.prepare(database_url, projection)
    tamper_evidence.prepare(database_url)
    timestamping.prepare(database_url)


def grant(
    conn: psycopg.Connection[Any], app: str, store: EventStoreSchema
) -> tuple[list[str], list[str]]:
    """Exactly the application role's privileges on what the owner owns (run as the owner, in
    one transaction: the running services never see a moment without them). What it, or
    PUBLIC, held on these tables before is revoked first. Returns the tables granted and those
    skipped because they do not exist yet."""
    role = sql.Identifier(app)
    granted: list[str] = []
    skipped: list[str] = []
    for kind, name in _managed(conn, store, owned_sequences=True):
        if kind in ("FUNCTION", "TYPE"):
            continue
        on = sql.SQL("SEQUENCE" if kind == "SEQUENCE" else "TABLE")
        for grantee in (role, sql.SQL("PUBLIC")):
            conn.execute(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(on, sql.SQL(name), grantee))
    for schema in _existing_schemas(conn, ["audit", *_projection_schemas()]):
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
    for entry in APPLICATION_GRANTS:
        table = store.name(entry.table)
        if _regclass(conn, table) is None:
            skipped.append(table)
            continue
        privileges = sql.SQL(", ").join(sql.SQL(p) for p in entry.privileges)
        conn.execute(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(privileges, store.table(entry.table), role)
        )
        if "INSERT" in entry.privileges:  # an insert draws from its serial columns' sequences
            for sequence in _sequences_of(conn, table):
                conn.execute(
                    sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.SQL(sequence), role)
                )
        granted.append(table)
    for schema in _existing_schemas(conn, _projection_schemas()):
        conn.execute(
            sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in READ_MODEL_PRIVILEGES),
                sql.Identifier(schema),
                role,
            )
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), role
            )
        )
        granted.append(f"{schema}.*")
    for function in FUNCTIONS:
        signature = store.function(function)
        conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(signature))
        conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(signature, role))
    return granted, skipped


# --- for processes run as the application role ---------------------------------------------


def check_schema(database_url: str, store_schema: str, events: str) -> None:
    """At the start of a process that does not manage the schema (DATABASE_SCHEMA_MANAGED=
    owner): refuse, in one sentence, to run on a schema this release's tables are not all in."""
    names = [
        entry.table.format(store=store_schema, events=events, snapshots=snapshots_table(events))
        for entry in APPLICATION_GRANTS
        if not entry.optional
    ] + [f"{schema}.projection_meta" for schema in _projection_schemas()]
    lock = f"{store_schema}.{FUNCTIONS[0].format(events=events)}()"
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        missing = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL",
                (names,),
            )
        ]
        row = conn.execute("SELECT to_regprocedure(%s) IS NULL", (lock,)).fetchone()
        if row and row[0]:
            missing.append(lock)
    if missing:
        named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if missing[3:] else "")
        raise ConfigurationError(
            f"the database lacks {named}: with DATABASE_SCHEMA_MANAGED=owner the "
            "owner role creates and upgrades the tables; run `reintegration db create-roles` "
            "with an administrator's DATABASE_URL (again after every upgrade)"
        )


def refused(exc: BaseException) -> str | None:
    """When the database refused a privilege somewhere behind ``exc``: one sentence saying so
    and what to do. PostgreSQL's own words name the object, never a value."""
    found: BaseException | None = exc
    while found is not None and not isinstance(found, InsufficientPrivilege):
        found = found.__cause__ or found.__context__
    if found is None:
        return None
    assert isinstance(found, InsufficientPrivilege)
    said = found.diag.message_primary or "permission denied"
    return (
        f"the database refused: {said}. The application role adds to history and changes no "
        "table: run services as it with DATABASE_SCHEMA_MANAGED=owner, and `db create-roles`, "
        "`projections rebuild` and `audit projections` with the owner's or an administrator's "
        "DATABASE_URL"
    )


# --- the steps -----------------------------------------------------------------------------


def _administrator(conn: psycopg.Connection[Any], owner: Role, app: Role) -> str:
    row = conn.execute(
        "SELECT current_user::text, rolsuper, rolcreaterole FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    assert row is not None  # the role this connection logged in as
    name, superuser, createrole = row
    if not (superuser or createrole):
        raise RolesError(
            f"{name} may not create roles: connect as a superuser, or as the database's owner "
            "with CREATEROLE"
        )
    if name in (owner.name, app.name):
        raise RolesError(f"connect as an administrator, not as {name}, one of the roles made")
    return str(name)


def _ensure_role(conn: psycopg.Connection[Any], role: Role, *, login: bool | None) -> str:
    """Create the role, or bring it back to safe attributes. ``login`` None: the owner, which
    logs in only with a password (without one, it is acted as through SET ROLE)."""
    row = conn.execute(
        "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls, "
        "rolcanlogin FROM pg_roles WHERE rolname = %s",
        (role.name,),
    ).fetchone()
    can_login = login if login is not None else bool(role.password or (row and row[1]))
    attributes = sql.SQL(SAFE_ATTRIBUTES + (" LOGIN" if can_login else " NOLOGIN"))
    password: sql.Composable = sql.SQL("")
    if role.password:
        # Hashed here (SCRAM, as the server is set to): the password itself never travels,
        # so no server log can show it.
        verifier = conn.pgconn.encrypt_password(role.password.encode(), role.name.encode())
        password = sql.SQL(" PASSWORD {}").format(sql.Literal(verifier.decode()))
    name = sql.Identifier(role.name)
    if row is None:
        conn.execute(sql.SQL("CREATE ROLE {} WITH {}{}").format(name, attributes, password))
        return "created"
    if row[0] or bool(row[1]) != can_login or role.password:
        conn.execute(sql.SQL("ALTER ROLE {} WITH {}{}").format(name, attributes, password))
        return "updated"
    return "unchanged"


def _act_as(conn: psycopg.Connection[Any], admin: str, owner: str) -> None:
    """The administrator creates the schema as the owner: it must be able to SET ROLE to it."""
    row = conn.execute("SELECT pg_has_role(current_user, %s, 'SET')", (owner,)).fetchone()
    if row and row[0]:
        return
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(admin))
            )
    except psycopg.Error:
        raise RolesError(
            f"{admin} cannot act as {owner}: GRANT {owner} TO {admin}, or connect as a superuser"
        ) from None


def _separate(conn: psycopg.Connection[Any], owner: str, app: str) -> None:
    """The application role inherits nothing from the owner."""
    member = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (app, owner)).fetchone()
    if member and member[0]:
        conn.execute(
            sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(owner), sql.Identifier(app))
        )


def _database_privileges(
    conn: psycopg.Connection[Any], owner: str, app: str, store_schema: str
) -> None:
    """The owner may create schemas and, in the event store's schema, tables; the application
    role may connect and use it. Nobody else creates in it (PostgreSQL 15's default, made sure
    of on databases from before)."""
    database = sql.Identifier(conn.info.dbname)
    o, a, store = sql.Identifier(owner), sql.Identifier(app), sql.Identifier(store_schema)
    conn.execute(sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(database, o))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, a))
    conn.execute(sql.SQL("REVOKE CREATE ON DATABASE {} FROM {}").format(database, a))
    conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(store, o))
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(store))
    conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(store, a))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(store, a))


def _give_to_owner(conn: psycopg.Connection[Any], owner: str, store: EventStoreSchema) -> int:
    """Every object of the project that another role owns (a deployment that ran as one role)
    passes to the owner: the project's schemas and everything in them, and in the event
    store's schema the events table, the tables and functions named after it and the
    library's function and type. Indexes and owned sequences follow their tables."""
    count = 0
    for kind, name in _managed(conn, store, schemas=True, not_owned_by=owner):
        conn.execute(
            sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(kind), sql.SQL(name), sql.Identifier(owner)
            )
        )
        count += 1
    return count


# Every object of the project: (kind for ALTER, its schema-qualified name, owner, schema, name).
OBJECTS = """
SELECT 'SCHEMA' AS kind, quote_ident(n.nspname) AS ident, n.nspowner AS owner,
       n.nspname AS schema, n.nspname AS name, 0 AS rank
FROM pg_namespace n
UNION ALL
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                      WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relowner, n.nspname, c.relname,
       CASE WHEN c.relkind = 'S' AND EXISTS (
           SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) THEN 2 ELSE 1 END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
UNION ALL
SELECT 'FUNCTION', quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '('
       || pg_get_function_identity_arguments(p.oid) || ')', p.proowner, n.nspname, p.proname, 1
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind = 'f'
UNION ALL
SELECT 'TYPE', quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typowner, n.nspname,
       t.typname, 1
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('c', 'e', 'd')
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
"""


def _managed(
    conn: psycopg.Connection[Any],
    store: EventStoreSchema,
    *,
    schemas: bool = False,
    owned_sequences: bool = False,
    not_owned_by: str | None = None,
) -> Iterator[tuple[str, str]]:
    """(kind, name) of the project's objects: schemas (with ``schemas``), then tables, views,
    functions and types, and sequences owned by a column (with ``owned_sequences``)."""
    prefix = store.events.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "\\_%"
    rows = conn.execute(
        sql.SQL(
            "SELECT kind, ident FROM ({objects}) o "
            "WHERE (schema = ANY(%(schemas)s) "
            "       OR (kind <> 'SCHEMA' AND schema = %(store)s "
            "           AND (name = ANY(%(names)s) OR name LIKE %(prefix)s))) "
            "  AND (kind <> 'SCHEMA' OR %(with_schemas)s) AND (rank < 2 OR %(with_owned)s) "
            "  AND (%(owner)s::text IS NULL OR owner <> %(owner)s::regrole) "
            "ORDER BY rank, kind, ident"
        ).format(objects=sql.SQL(OBJECTS)),
        {
            "schemas": ["audit", *_projection_schemas(rebuilding=True)],
            "store": store.schema,
            "names": [store.events, *store.owned_names],
            "prefix": prefix,
            "with_schemas": schemas,
            "with_owned": owned_sequences,
            "owner": not_owned_by,
        },
    ).fetchall()
    for kind, name in rows:
        yield str(kind), str(name)


def _projection_schemas(*, rebuilding: bool = False) -> list[str]:
    live = [p.schema for p in PROJECTIONS.values()]
    return live + [s + REBUILD_SUFFIX for s in live] if rebuilding else live


def _existing_schemas(conn: psycopg.Connection[Any], names: list[str]) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY 1", (names,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def _regclass(conn: psycopg.Connection[Any], table: str) -> str | None:
    row = conn.execute("SELECT to_regclass(%s)::text", (table,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _sequences_of(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The sequences of a table's serial or identity columns (an insert draws from them)."""
    rows = conn.execute(
        "SELECT d.objid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s::regclass AND d.deptype IN ('a', 'i') AND s.relkind = 'S'",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]
