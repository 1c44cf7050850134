"""The transparency log over the event log: an RFC 9162 Merkle tree whose leaves are the
events' chain links, in notification order, stored as C2SP ``tlog-tiles`` in PostgreSQL.

The hash chain (``infra/chain.py``) is written in each command's transaction; the tree is
grown from it by :func:`integrate` (as a certificate-transparency log integrates its queue):
before every checkpoint, and on demand. Leaf ``i`` is the ``i``-th committed event; the
leaves table maps it to its notification id (its *position*), since positions may skip.
Only one process integrates at a time (an advisory lock); tiles are derived data, rebuilt
from the chain by :func:`rebuild`, and every signed checkpoint's root is recomputed from the
events alone by ``audit verify``, so a tile changed in the database is caught there.

A proof reads the few tiles it needs in one query: at ten million leaves an inclusion proof
is 24 hashes from at most a dozen tiles (``bench/transparency_log.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infra import merkle

TLOG_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.tlog_leaves (
    leaf_index  bigint PRIMARY KEY,
    position    bigint NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS audit.tlog_tiles (
    level   smallint NOT NULL,
    index   bigint NOT NULL,
    hashes  bytea NOT NULL,
    PRIMARY KEY (level, index)
);
-- Leaves are appended; a tile only grows (a partial tile gains hashes, none changes).
-- `audit rebuild-tree`, run by the owner role, switches these off in its own transaction.
CREATE OR REPLACE FUNCTION audit.tile_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.level <> OLD.level OR NEW.index <> OLD.index
        OR length(NEW.hashes) < length(OLD.hashes)
        OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'audit.tlog_tiles only grow: a stored hash cannot change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS tlog_tiles_only_grow ON audit.tlog_tiles;
CREATE TRIGGER tlog_tiles_only_grow BEFORE UPDATE ON audit.tlog_tiles
    FOR EACH ROW EXECUTE FUNCTION audit.tile_only_grows();
DROP TRIGGER IF EXISTS tlog_tiles_kept ON audit.tlog_tiles;
CREATE TRIGGER tlog_tiles_kept BEFORE DELETE ON audit.tlog_tiles
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS tlog_tiles_no_truncate ON audit.tlog_tiles;
CREATE TRIGGER tlog_tiles_no_truncate BEFORE TRUNCATE ON audit.tlog_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS tlog_leaves_append_only ON audit.tlog_leaves;
CREATE TRIGGER tlog_leaves_append_only BEFORE UPDATE OR DELETE ON audit.tlog_leaves
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
DROP TRIGGER IF EXISTS tlog_leaves_no_truncate ON audit.tlog_leaves;
CREATE TRIGGER tlog_leaves_no_truncate BEFORE TRUNCATE ON audit.tlog_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
"""
INTEGRATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('audit-tlog-integrate'))"
BATCH = 50_000


class TreeCorrupted(Exception):
    """The stored tree does not hold what the chain gives."""


@dataclass(frozen=True)
class Leaf:
    index: int
    position: int
    chain_link: bytes


def tuples(conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor giving tuples, whatever row factory the connection (a pool's) was given."""
    return conn.cursor(row_factory=tuple_row)


def size(conn: psycopg.Connection[Any]) -> int:
    row = tuples(conn).execute("SELECT max(leaf_index) FROM audit.tlog_leaves").fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def integrate(database_url: str, chain_table: str, batch: int = BATCH) -> int:
    """Add every chain link not yet in the tree, in notification order, a batch per
    transaction; returns the tree's size."""
    while True:
        with psycopg.connect(database_url) as conn, conn.transaction():
            tuples(conn).execute(INTEGRATE_LOCK)
            tree_size, added = _integrate_batch(conn, chain_table, batch)
        if added < batch:
            return tree_size


def _integrate_batch(
    conn: psycopg.Connection[Any], chain_table: str, batch: int
) -> tuple[int, int]:
    row = (
        tuples(conn)
        .execute(
            "SELECT leaf_index, position FROM audit.tlog_leaves ORDER BY leaf_index DESC LIMIT 1"
        )
        .fetchone()
    )
    tree_size, last_position = (0, 0) if row is None else (int(row[0]) + 1, int(row[1]))
    links = (
        tuples(conn)
        .execute(
            SQL(
                "SELECT notification_id, chain_hash FROM {} WHERE notification_id > %s "
                "ORDER BY notification_id LIMIT %s"
            ).format(Identifier(chain_table)),
            (last_position, batch),
        )
        .fetchall()
    )
    if not links:
        return tree_size, 0
    last_tiles = _edge_tiles(conn, tree_size)
    _check_last_leaves(conn, chain_table, tree_size, last_tiles.get(0, b""))
    edge = merkle.TileEdge.resume(tree_size, last_tiles)
    for _, link in links:
        edge.append(merkle.leaf_hash(bytes(link)))
    tuples(conn).execute(
        "INSERT INTO audit.tlog_leaves (leaf_index, position) "
        "SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
        (list(range(tree_size, tree_size + len(links))), [p for p, _ in links]),
    )
    changed = sorted(edge.changed.items())
    tuples(conn).execute(
        "INSERT INTO audit.tlog_tiles (level, index, hashes) "
        "SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::bytea[]) "
        "ON CONFLICT (level, index) DO UPDATE SET hashes = excluded.hashes "
        "WHERE length(excluded.hashes) > length(audit.tlog_tiles.hashes)",
        ([k[0] for k, _ in changed], [k[1] for k, _ in changed], [v for _, v in changed]),
    )
    stored = _tiles(conn, [k for k, _ in changed])
    for key, hashes in changed:
        if stored.get(key, b"")[: len(hashes)] != hashes:
            raise TreeCorrupted(
                f"the stored tile {key} differs from the one the chain gives: the tree was "
                "changed in the database; `reintegration audit rebuild-tree` grows it again"
            )
    return edge.size, len(links)


def _check_last_leaves(
    conn: psycopg.Connection[Any], chain_table: str, tree_size: int, tile: bytes
) -> None:
    """The stored partial tile the tree grows from holds the chain's leaves (a tile changed in
    the database would otherwise be carried into every later root)."""
    held = tree_size % merkle.TILE_WIDTH
    if not held:
        return
    rows = (
        tuples(conn)
        .execute(
            SQL(
                "SELECT c.chain_hash FROM audit.tlog_leaves l JOIN {} c "
                "ON c.notification_id = l.position WHERE l.leaf_index >= %s ORDER BY l.leaf_index"
            ).format(Identifier(chain_table)),
            (tree_size - held,),
        )
        .fetchall()
    )
    expected = b"".join(merkle.leaf_hash(bytes(r[0])) for r in rows)
    if tile[: held * 32] != expected:
        raise TreeCorrupted(
            f"the stored tile (0, {tree_size // merkle.TILE_WIDTH}) differs from the chain: the "
            "tree was changed in the database; `reintegration audit rebuild-tree` grows it again"
        )


def _edge_tiles(conn: psycopg.Connection[Any], tree_size: int) -> dict[int, bytes]:
    """The stored tile of each level that holds the right edge of a tree of ``tree_size``."""
    wanted: list[tuple[int, int]] = []
    count, level = tree_size, 0
    while count:
        wanted.append((level, count // merkle.TILE_WIDTH))
        count //= merkle.TILE_WIDTH
        level += 1
    return {level: tile for (level, _), tile in _tiles(conn, wanted).items()}


def _tiles(conn: psycopg.Connection[Any], wanted: Any) -> dict[tuple[int, int], bytes]:
    wanted = list(wanted)
    if not wanted:
        return {}
    rows = (
        tuples(conn)
        .execute(
            "SELECT t.level, t.index, t.hashes FROM audit.tlog_tiles t "
            "JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, index) "
            "ON t.level = w.level AND t.index = w.index",
            ([w[0] for w in wanted], [w[1] for w in wanted]),
        )
        .fetchall()
    )
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


def _hashes(conn: psycopg.Connection[Any], ranges: list[tuple[int, int]]) -> list[bytes]:
    """The hashes of ``ranges``, from the tiles, in one query."""
    node = merkle.node_from_tiles(_tiles(conn, merkle.tiles_for(merkle.nodes_needed(ranges))))
    return [merkle.range_hash(a, b, node) for a, b in ranges]


def root(conn: psycopg.Connection[Any], tree_size: int) -> bytes:
    return _hashes(conn, [(0, tree_size)])[0] if tree_size else merkle.EMPTY_ROOT


def leaf_at(conn: psycopg.Connection[Any], position: int, chain_table: str) -> Leaf | None:
    row = (
        tuples(conn)
        .execute(
            SQL(
                "SELECT l.leaf_index, c.chain_hash FROM audit.tlog_leaves l "
                "JOIN {} c ON c.notification_id = l.position WHERE l.position = %s"
            ).format(Identifier(chain_table)),
            (position,),
        )
        .fetchone()
    )
    return None if row is None else Leaf(int(row[0]), position, bytes(row[1]))


def inclusion_proof(conn: psycopg.Connection[Any], leaf_index: int, tree_size: int) -> list[bytes]:
    return _hashes(conn, merkle.inclusion_ranges(leaf_index, tree_size))


def consistency_proof(conn: psycopg.Connection[Any], old: int, new: int) -> list[bytes]:
    return _hashes(conn, merkle.consistency_ranges(old, new))


def rebuild(database_url: str, chain_table: str) -> int:
    """Forget the tree and grow it again from the chain (after a restore, or when `audit
    verify` finds it changed). Run by the owner role: the application role cannot switch off
    the triggers that keep the tree append-only."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute(INTEGRATE_LOCK)
        for table in ("audit.tlog_leaves", "audit.tlog_tiles"):
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        conn.execute("TRUNCATE audit.tlog_leaves, audit.tlog_tiles")
        for table in ("audit.tlog_leaves", "audit.tlog_tiles"):
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    return integrate(database_url, chain_table)
