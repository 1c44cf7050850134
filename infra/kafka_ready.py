"""Wait until a Kafka broker answers a metadata request: ``python -m infra.kafka_ready HOST:PORT SECONDS``."""

from __future__ import annotations

import sys
import time

from confluent_kafka.admin import AdminClient


def wait_until_ready(bootstrap_servers: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    while True:
        try:
            metadata = admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            if metadata.brokers:
                return True
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


if __name__ == "__main__":
    servers = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    sys.exit(0 if wait_until_ready(servers, seconds) else 1)
