"""The hash chain, signed checkpoints and Kafka copies catch any tampering done in Postgres."""

from __future__ import annotations

import base64
import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra import tamper_evidence
from infra.bootstrap import Container
from infra.chain import GENESIS, link
from infra.config import AuditKey, ConfigurationError
from infra.identity import mint
from infra.kafka_links import (
    LINKS_IN_A_PROCESS_FROM,
    carried_links,
    links_read_in_another_process,
)
from infra.resilience import KAFKA, KafkaUnavailable, unavailable
from tests.integration.conftest import Stack, register_households
from tests.integration.test_dead_letters import publish_everything
from tests.support import ROOT, free_port

AUDITOR_TOKEN, AUDITOR_ENTRY = mint("kamran", "auditor")

KEY = base64.b64encode(os.urandom(32)).decode()
PUBLISHED = AuditKey(tamper_evidence.public_key_bytes(tamper_evidence.signing_key(KEY)))


@pytest.fixture
def audited(stack: Stack) -> Iterator[Stack]:
    """A log of a few dozen events, published to Kafka, with a signed checkpoint at its head."""
    settings = replace(stack.settings, audit_signing_key=KEY, audit_public_keys=(PUBLISHED,))
    container = Container(settings)
    container.projections.prepare()
    register_households(container, 12)
    publish_everything(Stack(container, settings))
    assert container.audit_trail.write_checkpoint() is not None
    try:
        yield Stack(container, settings)
    finally:
        container.close()


def sql(stack: Stack, *statements: str) -> None:
    with psycopg.connect(stack.settings.database_url or "") as conn:
        for statement in statements:
            conn.execute(statement)


def relink(stack: Stack) -> None:
    """What an insider does after editing an event: recompute every stored link with the
    project's own function, so that the chain table agrees with the events."""
    with psycopg.connect(stack.settings.database_url or "") as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM reintegration_events ORDER BY notification_id"
        ).fetchall()
        previous = GENESIS
        for position, originator, version, topic, state in rows:
            previous = link(previous, position, originator, version, topic, bytes(state))
            conn.execute(
                "UPDATE reintegration_events_chain SET chain_hash = %s WHERE notification_id = %s",
                (previous, position),
            )


def positions(stack: Stack) -> list[int]:
    with psycopg.connect(stack.settings.database_url or "") as conn:
        return [
            r[0]
            for r in conn.execute("SELECT notification_id FROM reintegration_events ORDER BY 1")
        ]


def first_break(stack: Stack) -> int | None:
    report = stack.container.audit_trail.verify("test")
    assert report.ok == (report.summary["first broken position"] is None)
    return report.summary["first broken position"]


# Kafka's links are read here on a short log and by a process of their own on a long one
# (infra/kafka_links.py): the tests that compare with them run both ways.
READ_HERE, READ_BY_A_PROCESS = LINKS_IN_A_PROCESS_FROM, 0
BOTH_WAYS = pytest.mark.parametrize(
    "links_in_a_process_from",
    [READ_HERE, READ_BY_A_PROCESS],
    ids=["links read here", "links read by a process of their own"],
)


@pytest.fixture
def links_in_a_process_from(audited: Stack) -> int:
    return READ_HERE  # the log of these tests is short


@pytest.fixture(autouse=True)
def _links_read(audited: Stack, links_in_a_process_from: int) -> None:
    audited.container.audit_trail.links_in_a_process_from = links_in_a_process_from


@BOTH_WAYS
def test_an_untouched_log_verifies_against_links_checkpoints_and_kafka(audited: Stack) -> None:
    report = audited.container.audit_trail.verify("test")
    assert report.ok, report.to_text()
    assert report.summary["events"] == len(positions(audited))
    assert report.summary["checkpoints verified"] == 1
    assert report.summary["checkpoints in Kafka"] == 1  # the same checkpoint, published
    assert report.summary["links compared with Kafka"] == len(positions(audited))


def test_changing_one_stored_byte_is_caught_at_its_position(audited: Stack) -> None:
    target = positions(audited)[7]
    sql(
        audited,
        "UPDATE reintegration_events SET state = overlay(state placing '\\x41'::bytea from 20 for 1) "
        f"WHERE notification_id = {target}",
    )
    assert first_break(audited) == target


def test_deleting_an_event_is_caught(audited: Stack) -> None:
    target = positions(audited)[5]
    sql(audited, f"DELETE FROM reintegration_events WHERE notification_id = {target}")
    assert first_break(audited) == target


@BOTH_WAYS
def test_deleting_an_event_and_its_link_is_caught(audited: Stack) -> None:
    target = positions(audited)[5]
    sql(
        audited,
        f"DELETE FROM reintegration_events WHERE notification_id = {target}",
        f"DELETE FROM reintegration_events_chain WHERE notification_id = {target}",
    )
    assert first_break(audited) == target
    report = audited.container.audit_trail.verify("test")
    assert {
        "position": target,
        "problem": "published to Kafka but missing from the event store",
    }.items() <= next(
        f for f in report.findings if f["problem"].startswith("published to Kafka")
    ).items()


def test_swapping_two_events_is_caught(audited: Stack) -> None:
    a, b = positions(audited)[3], positions(audited)[9]
    sql(
        audited,
        f"UPDATE reintegration_events SET notification_id = -1 WHERE notification_id = {a}",
        f"UPDATE reintegration_events SET notification_id = {a} WHERE notification_id = {b}",
        f"UPDATE reintegration_events SET notification_id = {b} WHERE notification_id = -1",
    )
    assert first_break(audited) == a


@BOTH_WAYS
def test_rewriting_the_stored_chain_to_hide_a_change_is_caught_by_checkpoints_and_kafka(
    audited: Stack,
) -> None:
    target = positions(audited)[4]
    sql(
        audited,
        "UPDATE reintegration_events SET state = overlay(state placing '\\x42'::bytea from 20 for 1) "
        f"WHERE notification_id = {target}",
    )
    relink(audited)
    report = audited.container.audit_trail.verify("test")
    assert not report.ok
    problems = {f["problem"] for f in report.findings}
    assert "differs from the link carried in Kafka" in problems
    assert any("signed checkpoint" in p for p in problems)
    assert report.summary["first broken position"] == target


def test_a_process_of_their_own_reads_the_same_links_in_the_same_order_and_is_gone_after(
    audited: Stack,
) -> None:
    bootstrap, topics = audited.settings.kafka_bootstrap_servers or "", audited.container.topics
    links = links_read_in_another_process(bootstrap, topics.event_topics, [])
    first = next(links)
    assert readers() == ["kafka-links"]
    read_there = [first, *links]
    assert read_there == list(carried_links(bootstrap, topics.event_topics, []))
    assert [position for position, _ in read_there] == positions(audited)
    assert not readers()


def readers() -> list[str]:
    return [p.name for p in multiprocessing.active_children() if p.name == "kafka-links"]


def test_kafka_out_of_reach_is_said_as_kafka_by_the_process_reading_its_links() -> None:
    """The reader's Kafka error crosses to the verifying process as Kafka's (its own class
    does not pickle), so that the command says which dependency is gone."""
    links = links_read_in_another_process(f"127.0.0.1:{free_port()}", ["reintegration.cases"], [])
    with pytest.raises(KafkaUnavailable) as raised:
        next(links)
    assert unavailable(raised.value) == KAFKA
    assert not readers()


@BOTH_WAYS
def test_messages_in_kafka_whose_link_cannot_be_read_are_a_finding_not_the_end_of_the_audit(
    audited: Stack,
) -> None:
    """Anyone who may publish to the topic can put junk in it: a position that is not a
    number, a link that is not hexadecimal. The verification reads on, names the first such
    message, fails, and still compares every other link."""
    topic = audited.container.topics.event_topics[0]
    producer = Producer({"bootstrap.servers": audited.settings.kafka_bootstrap_servers})
    for position, carried in ((b"not a number", b"00"), (b"-3", b"00"), (b"7", "ä".encode())):
        headers = {"chain-hash": carried, "notification-id": position}
        producer.produce(topic, key=b"junk", value=b"{}", headers=headers)
    assert producer.flush(10) == 0
    report = audited.container.audit_trail.verify("test")
    assert not report.ok
    unreadable = [f for f in report.findings if "cannot be read" in f["problem"]]
    assert len(unreadable) == 1
    assert unreadable[0]["problem"].startswith("3 messages in Kafka carry a link whose position")
    assert f"the first: {topic}[" in unreadable[0]["problem"]
    assert report.summary["links compared with Kafka"] == len(positions(audited))
    assert report.summary["first broken position"] is None  # the log itself is intact
    assert not readers()


def test_a_checkpoint_signed_with_another_key_is_refused(audited: Stack) -> None:
    forger = Ed25519PrivateKey.generate()
    position = positions(audited)[-1] + 1000
    created = datetime.now(UTC).isoformat()
    with psycopg.connect(audited.settings.database_url or "") as conn:
        conn.execute(
            "INSERT INTO audit.checkpoints VALUES (%s, %s, %s, %s, %s)",
            (
                position,
                b"\x00" * 32,
                created,
                tamper_evidence.key_id(tamper_evidence.public_key_bytes(forger)),
                forger.sign(tamper_evidence.signed_bytes(position, b"\x00" * 32, created)),
            ),
        )
    report = audited.container.audit_trail.verify("test")
    forged_id = tamper_evidence.key_id(tamper_evidence.public_key_bytes(forger))
    assert {
        "position": position,
        "problem": f"checkpoint signed by an unknown key {forged_id} (database)",
    } in report.findings


def test_checkpoints_and_the_access_log_are_append_only(audited: Stack) -> None:
    with psycopg.connect(audited.settings.database_url or "") as conn:
        conn.execute(
            "INSERT INTO audit.access_log (actor_id, actor_role, action, resource, subject_ids) "
            "VALUES ('a', 'operator', 'read', '/x', '{}')"
        )
        conn.commit()
        for statement in (
            "UPDATE audit.access_log SET actor_id = 'someone else'",
            "DELETE FROM audit.access_log",
            "TRUNCATE audit.access_log",
            "DELETE FROM audit.checkpoints",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


def test_the_verify_command_exits_non_zero_and_names_the_first_broken_position(
    audited: Stack,
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": audited.settings.database_url or "",
        "KAFKA_BOOTSTRAP_SERVERS": audited.settings.kafka_bootstrap_servers or "",
        "KAFKA_TOPIC_PREFIX": audited.settings.kafka_topic_prefix,
        "AUDIT_SIGNING_KEY": KEY,
        "AUDIT_PUBLIC_KEYS": base64.b64encode(PUBLISHED.public).decode(),
        "REINTEGRATION_ENV": "production",
        "API_TOKEN_HASHES": AUDITOR_ENTRY,
        "REINTEGRATION_TOKEN": AUDITOR_TOKEN,
    }
    cli = [str(ROOT / ".venv/bin/reintegration"), "audit", "verify", "--json"]
    keyless = subprocess.run(
        cli, env={**env, "AUDIT_PUBLIC_KEYS": ""}, capture_output=True, text=True
    )
    assert keyless.returncode == 2  # production: the signing key's own is not taken on trust
    assert "AUDIT_PUBLIC_KEYS" in keyless.stderr + keyless.stdout
    clean = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    target = positions(audited)[2]
    sql(audited, f"DELETE FROM reintegration_events WHERE notification_id = {target}")
    broken = subprocess.run(cli, env=env, capture_output=True, text=True)
    assert broken.returncode == 1
    assert f'"first broken position": {target}' in broken.stdout
    # With the published key given explicitly, the same verdict.
    public = base64.b64encode(
        tamper_evidence.public_key_bytes(tamper_evidence.signing_key(KEY))
    ).decode()
    explicit = subprocess.run(
        [*cli, "--public-key", public],
        env={**env, "AUDIT_SIGNING_KEY": "", "AUDIT_PUBLIC_KEYS": ""},
        capture_output=True,
        text=True,
    )
    assert explicit.returncode == 1
    assert f'"first broken position": {target}' in explicit.stdout


def test_the_demo_key_is_refused_outside_development_for_signing_and_for_verifying(
    audited: Stack,
) -> None:
    demo = AuditKey(tamper_evidence.demo_public_key())
    signing = Container(
        replace(audited.settings, audit_signing_key=tamper_evidence.DEMO_SIGNING_KEY)
    )
    verifying = Container(replace(audited.settings, audit_public_keys=(demo,)))
    try:
        with pytest.raises(ConfigurationError, match="demo key"):
            signing.audit_trail.signing_key()
        with pytest.raises(ConfigurationError, match="demo key"):
            verifying.audit_trail.verify("test")
    finally:
        signing.close()
        verifying.close()


def test_keys_rotate_a_checkpoint_counts_only_when_signed_within_its_key_validity(
    audited: Stack,
) -> None:
    """The old key signed the first checkpoint; the new key signs from now on. A checkpoint
    the old key signs after its validity ended is refused."""
    trail = audited.container.audit_trail
    (first,) = trail.stored_checkpoints()
    signed_at = datetime.fromisoformat(first.created_at)
    new_seed = base64.b64encode(os.urandom(32)).decode()
    new_key = tamper_evidence.signing_key(new_seed)
    old = AuditKey(PUBLISHED.public, valid_until=signed_at + timedelta(milliseconds=1))
    new = AuditKey(tamper_evidence.public_key_bytes(new_key), valid_from=old.valid_until)
    rotated = Container(
        replace(audited.settings, audit_signing_key=new_seed, audit_public_keys=(old, new))
    )
    try:
        register_households(rotated, 1)
        assert rotated.audit_trail.write_checkpoint() is not None
        report = rotated.audit_trail.verify("test")
        assert report.ok, report.findings
        assert report.summary["public key ids"] == f"{old.key_id}, {new.key_id}"

        late = positions(audited)[-1]
        created = (signed_at + timedelta(days=1)).isoformat()
        old_private = tamper_evidence.signing_key(KEY)
        with psycopg.connect(audited.settings.database_url or "") as conn:
            conn.execute(
                "INSERT INTO audit.checkpoints VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (position) DO NOTHING",
                (
                    late + 1000,
                    b"\x00" * 32,
                    created,
                    old.key_id,
                    old_private.sign(
                        tamper_evidence.signed_bytes(late + 1000, b"\x00" * 32, created)
                    ),
                ),
            )
        report = rotated.audit_trail.verify("test")
        assert any(
            "outside the validity of key " + old.key_id in f["problem"] for f in report.findings
        ), report.findings
    finally:
        rotated.close()


def test_positions_a_rolled_back_transaction_consumed_are_counted_and_explained_not_flagged(
    audited: Stack,
) -> None:
    with psycopg.connect(audited.settings.database_url or "") as conn:
        conn.execute(
            "SELECT nextval(pg_get_serial_sequence('reintegration_events', 'notification_id'))"
        )  # what an insert that rolls back leaves behind
    register_households(audited.container, 1)
    report = audited.container.audit_trail.verify("test")
    assert report.ok, report.findings
    assert report.summary["positions skipped (rolled back, not deleted)"] == 1
    assert any("1 positions skipped" in f["problem"] for f in report.findings)


def test_a_generated_key_signs_checkpoints_that_its_published_half_verifies(
    audited: Stack,
) -> None:
    made = subprocess.run(
        [str(ROOT / ".venv/bin/reintegration"), "audit", "keygen"],
        capture_output=True,
        text=True,
        env={**os.environ, "AUDIT_SIGNING_KEY": "", "AUDIT_PUBLIC_KEYS": ""},
    )
    assert made.returncode == 0, made.stderr
    lines = dict(
        line.split(": ", 1) if ": " in line else line.split("=", 1)
        for line in made.stdout.splitlines()
    )
    seed, public = lines["AUDIT_SIGNING_KEY"], lines["public key (publish it)"]
    assert tamper_evidence.public_key_bytes(tamper_evidence.signing_key(seed)) == base64.b64decode(
        public
    )
    assert lines["key id"] == tamper_evidence.key_id(base64.b64decode(public))


def test_checkpoints_verify_whatever_time_zone_the_database_speaks(audited: Stack) -> None:
    """What is signed is the checkpoint's time as written in UTC; a database whose sessions
    speak another time zone must give it back the same, to the verifier and to Kafka."""
    url = audited.settings.database_url or ""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Baku'")
    register_households(audited.container, 1)
    publish_everything(audited)
    assert audited.container.audit_trail.write_checkpoint() is not None
    report = audited.container.audit_trail.verify("test")
    assert report.ok, report.findings
    assert report.summary["checkpoints in Kafka"] == 2


def without_kafka(stack: Stack) -> Container:
    """The auditor's view from the database alone."""
    return Container(replace(stack.settings, kafka_bootstrap_servers=None))


def test_an_edit_relinked_with_the_checkpoints_removed_is_caught_without_kafka(
    audited: Stack,
) -> None:
    """The insider's attack: edit an event, recompute every later link with the project's own
    function, switch off the append-only trigger and delete the checkpoints. Nothing then
    vouches for the log, and verification says so."""
    target = positions(audited)[4]
    sql(
        audited,
        "UPDATE reintegration_events SET state = overlay(state placing '\\x42'::bytea from 20 for 1) "
        f"WHERE notification_id = {target}",
    )
    relink(audited)
    sql(
        audited,
        "ALTER TABLE audit.checkpoints DISABLE TRIGGER checkpoints_append_only",
        "DELETE FROM audit.checkpoint_publications",
        "DELETE FROM audit.checkpoints",
    )
    auditor = without_kafka(audited)
    try:
        report = auditor.audit_trail.verify("test")
    finally:
        auditor.close()
    assert not report.ok
    assert any(
        f["problem"].startswith("no valid signed checkpoint vouches for the log")
        for f in report.findings
    ), report.findings


def test_events_after_a_checkpoint_older_than_the_allowed_age_are_flagged(
    audited: Stack,
) -> None:
    (checkpoint,) = audited.container.audit_trail.stored_checkpoints()
    register_households(audited.container, 1)
    time.sleep(1.5)
    strict = Container(
        replace(audited.settings, kafka_bootstrap_servers=None, audit_checkpoint_max_age_s=1)
    )
    try:
        report = strict.audit_trail.verify("test")
    finally:
        strict.close()
    assert not report.ok
    assert report.summary["first broken position"] == checkpoint.position + 1
    assert any("vouched for by no checkpoint" in f["problem"] for f in report.findings)
    fresh = audited.container.audit_trail.verify("test")  # the default age: not yet stale
    assert fresh.ok, fresh.findings
