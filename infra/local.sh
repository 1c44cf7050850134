#!/usr/bin/env bash
# `make up` / `make down`: local Kafka and PostgreSQL for development.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="$root/.venv/bin/python"
port="${KAFKA_PORT:-9092}"
pgdata="$root/.data/local/postgres"

case "${1:-}" in
  up)
    mkdir -p "$root/.data/local"
    KAFKA_PORT="$port" KAFKA_DATA_DIR="$root/.data/local/kafka" infra/kafka/kafka.sh start
    url="$("$python" -W ignore -m infra.postgres start "$pgdata")"
    echo
    echo "Kafka and PostgreSQL are up. Export these, then run 'reintegration serve' (or relay/project/api):"
    echo "  export DATABASE_URL='$url'"
    echo "  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$port"
    ;;
  down)
    KAFKA_PORT="$port" KAFKA_DATA_DIR="$root/.data/local/kafka" infra/kafka/kafka.sh stop
    "$python" -W ignore -m infra.postgres stop "$pgdata"
    echo "Kafka and PostgreSQL stopped."
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
