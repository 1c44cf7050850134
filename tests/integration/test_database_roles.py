"""Two database roles (ADR 10): the services run as an application role that adds to history
and cannot change it; the owner role, acted as by `reintegration db create-roles`, owns and
upgrades every table. Each statement that would rewrite history fails for the application role,
and the audit afterwards finds the log as it was."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.http import create_app
from domain.base import Actor, CommandContext, acting_as
from domain.registry import NewMember, RegisterHousehold
from infra import tamper_evidence
from infra.bootstrap import Container
from infra.config import AuditKey, ConfigurationError, Settings
from infra.database_roles import Role, RolesError, as_role, create_roles
from tests.integration.conftest import Stack
from tests.integration.test_dead_letters import publish_everything
from tests.support import ROOT, create_database, household_body, random_fin

KEY = base64.b64encode(os.urandom(32)).decode()
PUBLISHED = AuditKey(tamper_evidence.public_key_bytes(tamper_evidence.signing_key(KEY)))
TOKEN = "roles-operator"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Roles:
    admin_url: str  # a superuser's, on the test's own database
    owner: str
    app: str

    @property
    def app_url(self) -> str:
        return make_conninfo(self.admin_url, user=self.app, password="")

    @property
    def owner_url(self) -> str:
        return as_role(self.admin_url, self.owner)

    def settings(self, **changes: Any) -> Settings:
        """The services' settings as the application role."""
        return replace(
            Settings(
                database_url=self.app_url,
                schema_managed_by="owner",
                audit_signing_key=KEY,
                audit_public_keys=(PUBLISHED,),
            ),
            **changes,
        )


@pytest.fixture
def roles(server_url: str, database_url: str) -> Iterator[Roles]:
    """A fresh database and two roles of its own (roles are the server's, not the database's),
    dropped afterwards with the database."""
    suffix = secrets.token_hex(4)
    made = Roles(database_url, f"t_owner_{suffix}", f"t_app_{suffix}")
    try:
        yield made
    finally:
        name = conninfo_to_dict(database_url)["dbname"]
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            for role in (made.app, made.owner):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def service(roles: Roles) -> Iterator[Container]:
    """The roles made on an empty database, and the services' container as the application
    role."""
    create_roles(roles.admin_url, Role(roles.owner), Role(roles.app))
    container = Container(roles.settings())
    try:
        yield container
    finally:
        container.close()


def register(container: Container, households: int = 1) -> None:
    context = CommandContext(Actor("roles-test", "operator"), "roles-correlation", "roles-command")
    with acting_as(context):
        for i in range(households):
            container.services.registry.register_household(
                RegisterHousehold(
                    members=[
                        NewMember(
                            fin=random_fin(),
                            first_name="Aysel",
                            last_name=f"Məmmədova{i}",
                            patronymic=None,
                            birth_date=date(1984, 3, 12),
                            sex="female",
                            relationship="head",
                        )
                    ],
                    origin_settlement_code="ZAN-002",
                    current_address="Bakı, yataqxana 4",
                )
            )


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table))).fetchone()
    return int(row[0]) if row else 0


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS",)}
    full.update({"KAFKA_BOOTSTRAP_SERVERS": "", **env})
    return subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), *args], env=full, capture_output=True, text=True
    )


def audit_verify(roles: Roles) -> subprocess.CompletedProcess[str]:
    """`reintegration audit verify` as an auditor runs it, on the application role's URL."""
    return run_cli(
        {
            "DATABASE_URL": roles.app_url,
            "DATABASE_SCHEMA_MANAGED": "owner",
            "AUDIT_PUBLIC_KEYS": base64.b64encode(PUBLISHED.public).decode(),
        },
        "audit",
        "verify",
        "--by",
        "auditor",
    )


def test_the_services_run_as_the_application_role_record_read_checkpoint_and_project(
    roles: Roles, service: Container
) -> None:
    register(service, 3)  # the event store: events, the chain, the origins index, the lock
    assert service.store.households_originating_from("ZAN-002")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = TestClient(
            create_app(service, {TOKEN: Actor("roles-user", "operator")}),
            raise_server_exceptions=False,
        )
    keyed = client.post(  # a keyed command: its answer is stored with its events
        "/api/v1/households",
        json=household_body(random_fin()),
        headers={**AUTH, "Idempotency-Key": "roles-1"},
    )
    assert keyed.status_code == 201, keyed.text
    household_id = keyed.json()["household_id"]
    service.projections.catch_up()  # the read models, as the application role
    read = client.get(f"/api/v1/households/{household_id}", headers=AUTH)  # the access log
    assert read.status_code == 200, read.text
    assert service.audit_trail.write_checkpoint() is not None
    assert service.idempotency_keys.purge() == 0  # expired keys are deleted

    assert count(roles.admin_url, "reintegration_events") == 3 * 2 + 2
    assert count(roles.admin_url, "reintegration_events_chain") == 3 * 2 + 2
    assert count(roles.admin_url, "reintegration_events_idempotency_keys") == 1
    assert count(roles.admin_url, "audit.access_log") == 1
    assert count(roles.admin_url, "audit.checkpoints") == 1
    assert count(roles.admin_url, "projection_households.rm_households") == 4
    report = service.audit_trail.verify("auditor")
    assert report.ok, report.to_text()


def test_the_application_role_takes_and_reads_snapshots_and_may_do_nothing_else_to_them(
    roles: Roles, service: Container
) -> None:
    """The owner creates the snapshots table; the services, as the application role, insert
    a settlement's snapshots as it grows and load it from them."""
    context = CommandContext(Actor("roles-test", "operator"), "roles-correlation", "roles-command")
    with acting_as(context):
        housing = service.services.housing
        housing.register_settlement("ZAN-002")
        housing.register_units(
            "ZAN-002",
            [
                {"reference": f"U-{n}", "address": "x", "rooms": 2, "kind": "house"}
                for n in range(120)
            ],
        )
        assert len(housing.settlement("ZAN-002").units) == 120
    assert count(roles.admin_url, "reintegration_snapshots") == 1
    with psycopg.connect(roles.admin_url) as conn:
        owner, privileges = conn.execute(
            "SELECT tableowner, (SELECT array_agg(p ORDER BY p) FROM unnest("
            "ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p "
            "WHERE has_table_privilege(%s, 'reintegration_snapshots', p)) "
            "FROM pg_tables WHERE tablename = 'reintegration_snapshots'",
            (roles.app,),
        ).fetchone() or (None, None)
    assert owner == roles.owner
    assert privileges == ["INSERT", "SELECT"]


def test_a_snapshot_forged_by_the_application_role_fails_the_audit(
    roles: Roles, service: Container
) -> None:
    """The application role may insert a snapshot row: one whose state its events do not give
    is named by `reintegration audit verify`, which fails."""
    register(service, 1)
    (household_id,) = service.store.households()
    assert service.audit_trail.write_checkpoint() is not None
    household = service.store.get(household_id, "household")
    household.current_address = "Forged street 1"  # a row as the role may insert it
    snapshots = service.application.snapshots
    assert snapshots is not None
    snapshots.put([type(household).Snapshot.take(household)])
    verified = audit_verify(roles)
    output = verified.stdout + verified.stderr
    assert verified.returncode == 1, output
    assert "snapshot differs from its events" in output and str(household_id) in output


def test_with_kafka_the_relay_and_a_projector_run_as_the_application_role(
    roles: Roles, kafka_bootstrap: str, topic_prefix: str
) -> None:
    create_roles(roles.admin_url, Role(roles.owner), Role(roles.app))
    settings = roles.settings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=topic_prefix, kafka_partitions=3
    )
    container = Container(settings)
    try:
        container.ensure_topics()
        register(container, 3)
        publish_everything(Stack(container, settings))  # and where it got to, in the database
        assert container.audit_trail.write_checkpoint() is not None  # and its publication
        container.projections.projector("households").run(threading.Event(), until_caught_up=True)
        assert count(roles.admin_url, "projection_households.rm_households") == 3
        assert count(roles.admin_url, "reintegration_events_published") >= 1
        assert count(roles.admin_url, "audit.checkpoint_publications") == 1
        report = container.audit_trail.verify("auditor")
        assert report.ok, report.to_text()
        assert report.summary["links compared with Kafka"] == 3 * 2
    finally:
        container.close()


def test_the_application_role_takes_the_write_lock_through_the_owners_function_only(
    roles: Roles, service: Container
) -> None:
    with psycopg.connect(roles.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("LOCK TABLE reintegration_events IN EXCLUSIVE MODE")
        conn.rollback()
        conn.execute("SELECT reintegration_events_lock()")
        held = conn.execute(
            "SELECT mode FROM pg_locks WHERE relation = 'reintegration_events'::regclass "
            "AND pid = pg_backend_pid() AND granted"
        ).fetchall()
        assert ("ExclusiveLock",) in held  # held by the caller's transaction, to its end


def test_concurrent_commits_as_the_application_role_chain_in_commit_order(
    roles: Roles, service: Container
) -> None:
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            register(service, 5)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    report = service.audit_trail.verify("auditor", require_keys=False)
    assert report.ok, report.to_text()
    assert report.summary["events"] == 4 * 5 * 2


HISTORY = {  # each table of history, with a column to change
    "reintegration_events": "state",
    "reintegration_events_chain": "chain_hash",
    "reintegration_events_household_origins": "origin_settlement_code",
    "reintegration_snapshots": "state",
    "audit.checkpoints": "signature",
    "audit.checkpoint_publications": "published_at",
    "audit.access_log": "reason",
}
ATTEMPTS = {
    **{f"updating {t}": f"UPDATE {t} SET {c} = {c}" for t, c in HISTORY.items()},
    **{f"deleting from {t}": f"DELETE FROM {t}" for t in HISTORY},
    **{f"truncating {t}": f"TRUNCATE {t}" for t in HISTORY},
    **{f"dropping {t}": f"DROP TABLE {t}" for t in HISTORY},
    **{f"disabling the triggers of {t}": f"ALTER TABLE {t} DISABLE TRIGGER ALL" for t in HISTORY},
    "dropping the access log's append-only trigger": (
        "DROP TRIGGER access_log_append_only ON audit.access_log"
    ),
    "dropping the checkpoints' append-only trigger": (
        "DROP TRIGGER checkpoints_append_only ON audit.checkpoints"
    ),
    "replicas' mode, which fires no trigger": "SET session_replication_role = replica",
    "adding a trigger that rewrites what is inserted": (
        "CREATE TRIGGER rewrite BEFORE INSERT ON reintegration_events "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    ),
    "taking ownership of the events": "ALTER TABLE reintegration_events OWNER TO CURRENT_USER",
    "taking ownership of the access log": "ALTER TABLE audit.access_log OWNER TO CURRENT_USER",
    "renaming the events": "ALTER TABLE reintegration_events RENAME TO old_events",
    "upserting over an event": (
        "INSERT INTO reintegration_events (originator_id, originator_version, topic, state) "
        "SELECT originator_id, originator_version, topic, state FROM reintegration_events "
        "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = excluded.state"
    ),
    "upserting over a snapshot": (
        "INSERT INTO reintegration_snapshots (originator_id, originator_version, topic, state) "
        "SELECT originator_id, originator_version, topic, state FROM reintegration_events "
        "ON CONFLICT (originator_id, originator_version) DO UPDATE SET state = excluded.state"
    ),
    "moving the log's sequence back": (
        "SELECT setval('reintegration_events_notification_id_seq', 1)"
    ),
    "replacing the chain's function": (
        "CREATE OR REPLACE FUNCTION reintegration_events_extend_chain() RETURNS void "
        "LANGUAGE sql AS 'SELECT'"
    ),
    "creating a table in the event store's schema": "CREATE TABLE public.shadow (x int)",
    "creating a table in the audit schema": "CREATE TABLE audit.shadow (x int)",
    "creating a table in a read model's schema": (
        "CREATE TABLE projection_households.shadow (x int)"
    ),
    "creating a function in the event store's schema": (
        "CREATE FUNCTION public.shadow() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    ),
    "creating a schema": "CREATE SCHEMA shadow",
    "becoming a superuser": "ALTER ROLE CURRENT_USER SUPERUSER",
}


@pytest.fixture
def recorded(roles: Roles, service: Container) -> Iterator[Roles]:
    """History written by the application role: events, a read (access log), a checkpoint
    (published, as if by Kafka), read models."""
    register(service, 4)
    service.projections.catch_up()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = TestClient(create_app(service, {TOKEN: Actor("roles-user", "operator")}))
    household_id = service.store.households()[0]
    assert client.get(f"/api/v1/households/{household_id}", headers=AUTH).status_code == 200
    assert service.audit_trail.write_checkpoint() is not None
    with psycopg.connect(roles.app_url) as conn:
        conn.execute(
            "INSERT INTO audit.checkpoint_publications (position) "
            "SELECT position FROM audit.checkpoints"
        )
    yield roles


@pytest.mark.parametrize("attempt", list(ATTEMPTS), ids=list(ATTEMPTS))
def test_the_application_role_is_refused_every_change_to_history(
    recorded: Roles, attempt: str
) -> None:
    with psycopg.connect(recorded.app_url) as conn, pytest.raises(psycopg.Error) as refused:
        conn.execute(ATTEMPTS[attempt])
    assert refused.value.sqlstate == "42501", (
        attempt,
        refused.value.sqlstate,
    )  # insufficient_privilege


def test_a_refused_change_names_the_table_and_the_audit_finds_nothing_changed(
    recorded: Roles,
) -> None:
    before = {table: count(recorded.admin_url, table) for table in HISTORY}
    with psycopg.connect(recorded.app_url, autocommit=True) as conn:
        for statement in ATTEMPTS.values():
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute("DELETE FROM reintegration_events")
    assert refused.value.diag.message_primary == "permission denied for table reintegration_events"
    assert {table: count(recorded.admin_url, table) for table in HISTORY} == before

    verified = audit_verify(recorded)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "outcome: OK" in verified.stdout + verified.stderr
    assert f"events: {before['reintegration_events']}" in verified.stdout + verified.stderr


def test_running_create_roles_again_changes_nothing_and_takes_back_what_was_added_by_hand(
    recorded: Roles,
) -> None:
    def privileges() -> list[tuple[Any, ...]]:
        with psycopg.connect(recorded.admin_url) as conn:
            return conn.execute(
                "SELECT c.oid::regclass::text, pg_get_userbyid(c.relowner), c.relacl::text "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'audit') OR n.nspname LIKE 'projection\\_%' "
                "ORDER BY 1"
            ).fetchall()

    first = privileges()
    with psycopg.connect(recorded.admin_url) as conn:  # a well-meant grant by hand
        conn.execute(
            sql.SQL("GRANT UPDATE, DELETE ON reintegration_events TO {}").format(
                sql.Identifier(recorded.app)
            )
        )
    again = run_cli(
        {"DATABASE_URL": recorded.admin_url, "REINTEGRATION_APP_PASSWORD": "s3cret-for-the-app"},
        "db",
        "create-roles",
        "--owner",
        recorded.owner,
        "--app",
        recorded.app,
    )
    assert again.returncode == 0, again.stderr
    assert f"role {recorded.owner}: unchanged" in again.stderr
    assert f"role {recorded.app}: updated" in again.stderr  # its new password
    assert "s3cret-for-the-app" not in again.stdout + again.stderr
    assert privileges() == first
    with psycopg.connect(recorded.admin_url) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (recorded.app,)
        ).fetchone()
    assert row is not None and row[0].startswith("SCRAM-SHA-256$")  # stored hashed

    carrying_on = Container(recorded.settings())
    try:
        register(carrying_on, 1)  # the services carry on
    finally:
        carrying_on.close()
    verified = audit_verify(recorded)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_database_the_services_made_in_one_role_passes_to_the_owner(roles: Roles) -> None:
    single = Container(Settings(database_url=roles.admin_url))  # as before: one role, DDL at start
    try:
        single.projections.prepare()
        register(single, 2)
    finally:
        single.close()
    outcome = create_roles(roles.admin_url, Role(roles.owner), Role(roles.app))
    assert outcome.given_to_owner > 0
    with psycopg.connect(roles.admin_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE (n.nspname = 'public' AND c.relname LIKE 'reintegration\\_events%%') "
            "OR n.nspname = 'audit' OR n.nspname LIKE 'projection\\_%%'"
        ).fetchall()
    assert owners == [(roles.owner,)]
    service = Container(roles.settings())
    try:
        register(service, 1)
        assert service.audit_trail.verify("auditor", require_keys=False).ok
    finally:
        service.close()


def test_a_rebuild_by_the_owner_keeps_the_application_roles_access_to_the_read_model(
    roles: Roles, service: Container
) -> None:
    register(service, 2)
    owner = Container(Settings(database_url=roles.owner_url))  # maintenance, as the owner
    try:
        assert owner.projections.rebuild("households", threading.Event())
    finally:
        owner.close()
    register(service, 1)
    service.projections.catch_up()  # the application role writes into the rebuilt tables
    assert count(roles.app_url, "projection_households.rm_households") == 3


def test_a_service_as_the_application_role_on_a_database_without_the_owners_tables_refuses_to_start(
    roles: Roles, server_url: str, service: Container
) -> None:
    empty = create_database(server_url)
    settings = roles.settings(database_url=make_conninfo(empty, user=roles.app, password=""))
    container = Container(settings)
    try:
        with pytest.raises(ConfigurationError, match="reintegration db create-roles"):
            container.application  # noqa: B018
    finally:
        container.close()
        with psycopg.connect(server_url, autocommit=True) as conn:
            name = conninfo_to_dict(empty)["dbname"]
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_application_role_without_the_owner_setting_is_told_what_to_set(
    recorded: Roles,
) -> None:
    result = run_cli(
        {
            "DATABASE_URL": recorded.app_url,
            "AUDIT_PUBLIC_KEYS": base64.b64encode(PUBLISHED.public).decode(),
        },
        "audit",
        "verify",
    )
    assert result.returncode == 1
    assert "error: the database refused: permission denied" in result.stderr
    assert "DATABASE_SCHEMA_MANAGED=owner" in result.stderr


def test_create_roles_refuses_bad_input_in_one_line(roles: Roles) -> None:
    for args, said in [
        (["--owner", "Robert'); DROP"], "is not 1 to 63 lower-case letters"),
        (["--owner", "same", "--app", "same"], "must be two roles"),
    ]:
        result = run_cli({"DATABASE_URL": roles.admin_url}, "db", "create-roles", *args)
        assert result.returncode == 2
        assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1
    create_roles(roles.admin_url, Role(roles.owner), Role(roles.app))
    with pytest.raises(RolesError, match="may not create roles"):
        create_roles(
            make_conninfo(roles.admin_url, user=roles.app, password=""),
            Role(roles.owner + "_x"),
            Role(roles.app + "_x"),
        )
