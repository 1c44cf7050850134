"""The transparency log at ten million events: the first integration of the tree, a signed
checkpoint per interval, inclusion and consistency proofs (in process and over HTTP), storage.

    python -m bench.transparency_log --size full    # 10,000,000 chain links (issue 16's size)
    python -m bench.transparency_log --size quick   # 200,000 chain links

A fresh database gets a chain table of synthetic links (`reintegration_events_chain`, filled by
`generate_series` and `sha256` in SQL; three positions skipped after every thousandth event, as
rolled-back transactions leave them). Then, timed: the first integration of every link into the
tree (a one-off, after the upgrade that brings the tree); `write_checkpoint` after each of a few
intervals of new links (60 s at 500 events/s: integrate, root, sign, insert; no Kafka); inclusion
proofs for random positions against the first checkpoint and consistency proofs between random
tree sizes, through `AuditTrail` on the API's pooled connections and over HTTP from
`reintegration api`; the size of the tree's tables. Before the proofs, the tree's tables are
vacuumed and analysed, as autovacuum does once after the bulk integration (measured during it,
the slowest answers took up to 62 ms instead of 17).

Every proof measured is verified with tools/verify_transparency.py, against roots recomputed
here from the chain table alone and against the signed checkpoint notes, so that a fast wrong
answer fails the run instead of being reported.

Uses DATABASE_URL when set, else a fresh embedded PostgreSQL under .data/bench-tlog.
Writes bench/results/tlog-<size>.json.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import platform
import random
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import psycopg

from bench.pipeline_bench import fresh_database, percentile, wait_ready
from infra import tamper_evidence, transparency_log
from infra.bootstrap import Container
from infra.config import Settings
from infra.signed_note import ED25519, VerifierKey

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"quick": 200_000, "full": 10_000_000}
CHAIN = "reintegration_events_chain"  # the event store's chain table (infra/chain.py)
INTERVAL_LINKS = 60 * 500  # one checkpoint interval (60 s) at 500 events/s
INTERVALS = 5
REQUESTS = 2_000
WARM_UP = 20
SAMPLE_SIZES = 200  # tree sizes whose roots are recomputed from the chain for consistency proofs
TARGETS = {"checkpoint_seconds": 60, "proof_ms": 50}


def position_of(n: int) -> int:
    """The notification id of the ``n``-th event (from 1): three ids skipped after every
    thousandth event, as a rolled-back transaction leaves a gap."""
    return n + 3 * (n // 1000)


def link_of(n: int) -> bytes:
    """The synthetic chain link of the ``n``-th event: ``sha256(int8send(n))``, as filled."""
    return hashlib.sha256(n.to_bytes(8, "big", signed=True)).digest()


def append_links(database_url: str, first: int, count: int) -> None:
    """Events ``first`` to ``first + count - 1`` join the chain table (positions with gaps)."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            f"INSERT INTO {CHAIN} (notification_id, chain_hash) "
            "SELECT n + 3 * (n / 1000), sha256(int8send(n)) FROM generate_series(%s::bigint, %s) n",
            (first, first + count - 1),
        )


def fill_chain(database_url: str, links: int) -> float:
    """The chain table, as infra/chain.py creates it, with ``links`` synthetic links."""
    started = time.perf_counter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {CHAIN} (notification_id bigint NOT NULL, chain_hash bytea NOT NULL)"
        )
    append_links(database_url, 1, links)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {CHAIN} ADD PRIMARY KEY (notification_id)")
        # A table of ten million events has been vacuumed and analysed (autovacuum would do it
        # now, during the measurements).
        conn.execute(f"VACUUM (ANALYZE) {CHAIN}")
    return time.perf_counter() - started


def standalone_verifier() -> ModuleType:
    """tools/verify_transparency.py, the verifier anyone runs, loaded as a module."""
    spec = importlib.util.spec_from_file_location(
        "verify_transparency", ROOT / "tools" / "verify_transparency.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["verify_transparency"] = module
    spec.loader.exec_module(module)
    return module


def roots_from_chain(database_url: str, sizes: set[int], vt: ModuleType) -> dict[int, bytes]:
    """The root hash of the tree of each of ``sizes`` leaves, recomputed from the chain table
    alone with the standalone verifier's hashes (not from the tiles)."""
    peaks: list[bytes] = []  # the complete subtrees along the right edge, largest first
    roots: dict[int, bytes] = {}
    count = 0
    with psycopg.connect(database_url) as conn, conn.cursor(name="walk") as cur:
        cur.itersize = 50_000
        cur.execute(f"SELECT chain_hash FROM {CHAIN} ORDER BY notification_id")
        for (link,) in cur:
            digest, n = vt.leaf_hash(bytes(link)), count
            while n & 1:
                digest = vt.node_hash(peaks.pop(), digest)
                n >>= 1
            peaks.append(digest)
            count += 1
            if count in sizes:
                root = peaks[-1]
                for peak in reversed(peaks[:-1]):
                    root = vt.node_hash(peak, root)
                roots[count] = root
    missing = sizes - roots.keys()
    assert not missing, f"the chain holds fewer links than {min(missing)}"
    return roots


def latencies(durations_ms: list[float]) -> dict[str, float]:
    return {
        "requests": len(durations_ms),
        "mean_ms": round(sum(durations_ms) / len(durations_ms), 2),
        "p50_ms": round(percentile(durations_ms, 50), 2),
        "p95_ms": round(percentile(durations_ms, 95), 2),
        "p99_ms": round(percentile(durations_ms, 99), 2),
        "max_ms": round(max(durations_ms), 2),
        "over_target": sum(1 for d in durations_ms if d > TARGETS["proof_ms"]),
    }


def timed_each(requests: list[Any], ask: Callable[[Any], Any]) -> tuple[list[float], list[Any]]:
    """Each request answered in turn (one client); the durations in ms and the answers."""
    durations, answers = [], []
    for request in requests:
        started = time.perf_counter()
        answers.append(ask(request))
        durations.append((time.perf_counter() - started) * 1000)
    return durations, answers


class Checks:
    """Verifies answers with the standalone verifier against what this script knows
    independently: the synthetic links, the roots recomputed from the chain, the signed notes."""

    def __init__(self, vt: ModuleType, roots: dict[int, bytes], vkey: str) -> None:
        self.vt = vt
        self.roots = roots
        self.keys = [vt.VerifierKey.parse(vkey)]
        self.verified = 0

    def note(self, note: str, tree_size: int) -> None:
        checkpoint = self.vt.Checkpoint.verified(note, self.keys)
        assert checkpoint.size == tree_size, (checkpoint.size, tree_size)
        assert checkpoint.root == self.roots[tree_size], f"the root of {tree_size} is wrong"

    def inclusion(
        self, n: int, leaf_index: int, link: bytes, tree_size: int, hashes: list[bytes]
    ) -> None:
        assert leaf_index == n - 1, f"event {n} is given as leaf {leaf_index}"
        assert link == link_of(n), f"event {n} has another chain link"
        self.vt.verify_inclusion(
            self.vt.leaf_hash(link_of(n)), n - 1, tree_size, hashes, self.roots[tree_size]
        )
        self.verified += 1

    def consistency(self, old: int, new: int, hashes: list[bytes]) -> None:
        self.vt.verify_consistency(old, new, hashes, self.roots[old], self.roots[new])
        self.verified += 1


def table_sizes(database_url: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with psycopg.connect(database_url) as conn:
        for table in ("audit.tlog_leaves", "audit.tlog_tiles", CHAIN):
            row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass), "
                "pg_indexes_size(%s::regclass), (SELECT count(*) FROM " + table + ")",
                (table, table, table),
            ).fetchone()
            assert row is not None
            found[table] = {
                "total_mib": round(row[0] / 2**20, 1),
                "heap_mib": round(row[1] / 2**20, 1),
                "indexes_mib": round(row[2] / 2**20, 1),
                "rows": int(row[3]),
            }
        analysed = conn.execute(
            "SELECT relname, last_autoanalyze IS NOT NULL OR last_analyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE schemaname = 'audit' AND relname LIKE 'tlog_%'"
        ).fetchall()
    found["tlog_tables_analysed_yet"] = {r[0]: r[1] for r in analysed}
    return found


def autovacuum_runs(database_url: str) -> dict[str, int]:
    """How many times autovacuum has vacuumed or analysed each table so far."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || relname, autovacuum_count + autoanalyze_count "
            "FROM pg_stat_user_tables"
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="quick")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    links = SIZES[args.size]
    rng = random.Random(args.seed)
    vt = standalone_verifier()

    server = os.environ.get("DATABASE_URL")
    if not server:
        from infra.postgres import start_embedded

        server = start_embedded(ROOT / ".data" / "bench-tlog" / "postgres")
    database_url = fresh_database(server)
    key = tamper_evidence.signing_key(tamper_evidence.DEMO_SIGNING_KEY)
    settings = Settings(database_url=database_url, data_dir=ROOT / ".data" / "bench-tlog")
    origin = settings.audit_log_origin
    vkey = str(VerifierKey(origin, ED25519, tamper_evidence.public_key_bytes(key)))
    container: Container | None = None
    api: subprocess.Popen[bytes] | None = None
    figures: dict[str, Any] = {}
    try:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            postgres = f"PostgreSQL {row[0] if row else '?'}"
        fill_s = fill_chain(database_url, links)
        print(f"{links:,} chain links in {fill_s:.0f} s", flush=True)
        tamper_evidence.prepare(database_url)

        # (a) The first integration of the whole chain: once, after the upgrade.
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        size = transparency_log.integrate(database_url, CHAIN)
        integrate_s = time.perf_counter() - started
        assert size == links, (size, links)
        rss_integrate = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"first integration: {integrate_s:.1f} s", flush=True)
        started = time.perf_counter()
        first = tamper_evidence.write_checkpoint(database_url, CHAIN, key, origin=origin)
        first_checkpoint_s = time.perf_counter() - started
        assert first is not None and first.tree_size == links

        # (b) The steady state: an interval's new links, then the checkpoint.
        intervals = []
        for i in range(INTERVALS):
            append_links(database_url, links + i * INTERVAL_LINKS + 1, INTERVAL_LINKS)
            started = time.perf_counter()
            checkpoint = tamper_evidence.write_checkpoint(database_url, CHAIN, key, origin=origin)
            intervals.append(time.perf_counter() - started)
            assert checkpoint is not None and checkpoint.tree_size == links + (i + 1) * (
                INTERVAL_LINKS
            )
            print(f"checkpoint of {checkpoint.tree_size:,}: {intervals[-1]:.2f} s", flush=True)
        newest = links + INTERVALS * INTERVAL_LINKS
        started = time.perf_counter()
        idle = tamper_evidence.write_checkpoint(database_url, CHAIN, key, origin=origin)
        idle_s = time.perf_counter() - started
        assert idle is None
        # What autovacuum does once after the bulk integration, done before the proofs are
        # measured rather than during them (it held their slowest answers above 50 ms).
        started = time.perf_counter()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) audit.tlog_leaves, audit.tlog_tiles")
        vacuum_s = time.perf_counter() - started

        # What the answers are checked against: roots recomputed from the chain alone.
        checkpoint_sizes = {links + i * INTERVAL_LINKS for i in range(INTERVALS + 1)}
        sample_sizes = {rng.randint(1, newest) for _ in range(SAMPLE_SIZES)} | checkpoint_sizes
        started = time.perf_counter()
        roots = roots_from_chain(database_url, sample_sizes, vt)
        recompute_s = time.perf_counter() - started
        checks = Checks(vt, roots, vkey)
        for c in tamper_evidence.stored_checkpoints(database_url):
            assert c.note is not None and c.tree_size is not None
            checks.note(c.note, c.tree_size)
        print(f"roots recomputed from the chain in {recompute_s:.0f} s", flush=True)

        autovacuum_before = autovacuum_runs(database_url)

        # (c) Inclusion proofs against the first checkpoint, on the API's pooled connections.
        container = Container(settings)
        trail = container.audit_trail
        events = [rng.randint(1, links) for _ in range(WARM_UP + REQUESTS)]
        timed_each(events[:WARM_UP], lambda n: trail.inclusion(position_of(n), links))
        durations, proofs = timed_each(
            events[WARM_UP:], lambda n: trail.inclusion(position_of(n), links)
        )
        for n, proof in zip(events[WARM_UP:], proofs, strict=True):
            checks.inclusion(n, proof.leaf.index, proof.leaf.chain_link, links, proof.hashes)
            assert proof.checkpoint is not None
        checks.note(proofs[0].checkpoint, links)
        inclusion = latencies(durations)
        print(f"inclusion, in process: {inclusion}", flush=True)

        # (d) Consistency proofs between random tree sizes (of the recomputed sample).
        ordered = sorted(sample_sizes)
        pairs = [tuple(sorted(rng.sample(ordered, 2))) for _ in range(WARM_UP + REQUESTS)]
        timed_each(pairs[:WARM_UP], lambda p: trail.consistency(*p))
        durations, answers = timed_each(pairs[WARM_UP:], lambda p: trail.consistency(*p))
        for (old, new), hashes in zip(pairs[WARM_UP:], answers, strict=True):
            checks.consistency(old, new, hashes)
        consistency = latencies(durations)
        print(f"consistency, in process: {consistency}", flush=True)

        # (c, d) The same over HTTP, from `reintegration api` on the same database.
        port = 28000 + secrets.randbelow(1000)
        base_url = f"http://127.0.0.1:{port}"
        logs = ROOT / ".data" / "bench-tlog"
        api = subprocess.Popen(
            [str(ROOT / ".venv/bin/reintegration"), "api"],
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "REINTEGRATION_ENV": "development",
                "HTTP_PORT": str(port),
                "LOG_LEVEL": "warning",
            },
            stdout=(logs / "api.log").open("wb"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        wait_ready(base_url)
        with httpx.Client(base_url=base_url, timeout=30) as client:

            def include(n: int) -> dict[str, Any]:
                answer = client.get(
                    f"/api/v1/audit/proofs/inclusion/{position_of(n)}",
                    params={"tree_size": links},
                )
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()
                return body

            def extend(pair: tuple[int, int]) -> dict[str, Any]:
                answer = client.get(
                    "/api/v1/audit/proofs/consistency", params={"from": pair[0], "to": pair[1]}
                )
                assert answer.status_code == 200, answer.text
                body: dict[str, Any] = answer.json()
                return body

            events = [rng.randint(1, links) for _ in range(WARM_UP + REQUESTS)]
            timed_each(events[:WARM_UP], include)
            durations, bodies = timed_each(events[WARM_UP:], include)
            for n, body in zip(events[WARM_UP:], bodies, strict=True):
                hashes = [base64.b64decode(h) for h in body["hashes"]]
                link = bytes.fromhex(body["chain_link"])
                checks.inclusion(n, body["leaf_index"], link, body["tree_size"], hashes)
            checks.note(bodies[0]["checkpoint"], links)
            inclusion_http = latencies(durations)
            print(f"inclusion, over HTTP: {inclusion_http}", flush=True)

            pairs = [tuple(sorted(rng.sample(ordered, 2))) for _ in range(WARM_UP + REQUESTS)]
            timed_each(pairs[:WARM_UP], extend)
            durations, bodies = timed_each(pairs[WARM_UP:], extend)
            for (old, new), body in zip(pairs[WARM_UP:], bodies, strict=True):
                checks.consistency(old, new, [base64.b64decode(h) for h in body["hashes"]])
            consistency_http = latencies(durations)
            print(f"consistency, over HTTP: {consistency_http}", flush=True)

        autovacuum_after = autovacuum_runs(database_url)
        storage = table_sizes(database_url)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "diff", "--name-only", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.split()
        if changed:
            commit += f" with uncommitted changes to {', '.join(changed)}"
        leaves_mib = storage["audit.tlog_leaves"]["total_mib"]
        tiles_mib = storage["audit.tlog_tiles"]["total_mib"]
        figures = {
            "benchmark": "transparency log",
            "size": args.size,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {postgres}",
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "chain_links": links,
            "positions": "three skipped after every thousandth event",
            "fill_chain_seconds": round(fill_s, 1),
            "first_integration": {
                "leaves": links,
                "seconds": round(integrate_s, 1),
                "leaves_per_second": round(links / integrate_s),
                "benchmark_process_peak_rss_mib_before_and_after": [
                    round(rss_before / 1024),
                    round(rss_integrate / 1024),
                ],
                "then_first_checkpoint_seconds": round(first_checkpoint_s, 3),
            },
            "checkpoint_per_interval": {
                "new_links_per_interval": INTERVAL_LINKS,
                "intervals": INTERVALS,
                "tree_size_after": newest,
                "seconds": [round(s, 3) for s in intervals],
                "max_seconds": round(max(intervals), 3),
                "without_new_links_seconds": round(idle_s, 3),
            },
            "vacuum_analyze_of_the_tree_after_integration_seconds": round(vacuum_s, 1),
            "inclusion_proofs": {
                "tree_size": links,
                "in_process_audit_trail_pooled": inclusion,
                "over_http": inclusion_http,
            },
            "consistency_proofs": {
                "between": f"{len(ordered)} random tree sizes up to {newest:,}",
                "in_process_audit_trail_pooled": consistency,
                "over_http": consistency_http,
            },
            "autovacuum_runs_during_proofs": {
                t: n - autovacuum_before.get(t, 0)
                for t, n in autovacuum_after.items()
                if n > autovacuum_before.get(t, 0)
            },
            "proofs_verified_with_tools_verify_transparency": checks.verified,
            "roots_recomputed_from_chain_seconds": round(recompute_s, 1),
            "storage": storage,
            "storage_bytes_per_leaf": round(
                (leaves_mib + tiles_mib) * 2**20 / storage["audit.tlog_leaves"]["rows"], 1
            ),
            "targets": {**TARGETS, "interval": "AUDIT_CHECKPOINT_INTERVAL_S, default 60"},
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        if api is not None:
            api.terminate()
            try:
                api.wait(20)
            except subprocess.TimeoutExpired:
                api.kill()
        if container is not None:
            container.close()
        if args.keep:
            print(f"kept: {database_url}")
        else:
            with psycopg.connect(server, autocommit=True) as conn:
                name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = ROOT / "bench" / "results" / f"tlog-{args.size}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
