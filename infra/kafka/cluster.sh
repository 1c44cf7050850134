#!/usr/bin/env bash
# A three-node Apache Kafka cluster (KRaft; each node broker and controller) on 127.0.0.1, as
# production runs it: internal topics replicated three times, min.insync.replicas 2. For the
# fault tests and for trying the project against a cluster.
#
#   infra/kafka/cluster.sh start          format if new, start the three nodes, wait for them
#   infra/kafka/cluster.sh stop           stop every node
#   infra/kafka/cluster.sh kill N         SIGKILL node N (1-3)
#   infra/kafka/cluster.sh start-node N   start node N again and wait for it
#   infra/kafka/cluster.sh bootstrap      print the bootstrap servers
#
# KAFKA_CLUSTER_PORT (default 39092): node N listens on PORT+2(N-1), its controller on the next
# port. KAFKA_CLUSTER_DIR (default .data/kafka-cluster-$KAFKA_CLUSTER_PORT) holds the nodes' data.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base="${KAFKA_CLUSTER_PORT:-39092}"
dir="${KAFKA_CLUSTER_DIR:-$root/.data/kafka-cluster-$base}"
python="${PYTHON:-$root/.venv/bin/python}"

port_of() { echo $((base + 2 * ($1 - 1))); }
voters="1@127.0.0.1:$(( $(port_of 1) + 1 )),2@127.0.0.1:$(( $(port_of 2) + 1 )),3@127.0.0.1:$(( $(port_of 3) + 1 ))"
bootstrap="127.0.0.1:$(port_of 1),127.0.0.1:$(port_of 2),127.0.0.1:$(port_of 3)"

node() {  # node N COMMAND
  local n=$1 port
  port=$(port_of "$n")
  mkdir -p "$dir"
  if [[ ! -f "$dir/cluster.id" ]]; then
    "$here/kafka.sh" fetch
    java -cp "$here/.cache/libs/*" kafka.tools.StorageTool random-uuid | tail -n 1 >"$dir/cluster.id"
  fi
  KAFKA_PORT=$port KAFKA_CONTROLLER_PORT=$((port + 1)) KAFKA_DATA_DIR="$dir/node-$n" \
    KAFKA_NODE_ID=$n KAFKA_QUORUM_VOTERS="$voters" KAFKA_CLUSTER_ID="$(cat "$dir/cluster.id")" \
    KAFKA_INTERNAL_REPLICATION=3 KAFKA_NO_WAIT=1 KAFKA_HEAP="${KAFKA_HEAP:-512m}" \
    "$here/kafka.sh" "$2"
}

wait_ready() {  # every node answers
  local n
  for n in "$@"; do
    (cd "$root" && "$python" -m infra.kafka_ready "127.0.0.1:$(port_of "$n")" 90) \
      || { echo "Kafka node $n did not become ready" >&2; exit 1; }
  done
}

case "${1:-}" in
  start)
    for n in 1 2 3; do node $n start; done
    wait_ready 1 2 3
    echo "Kafka cluster ready: $bootstrap" >&2
    ;;
  stop) for n in 1 2 3; do node $n stop; done ;;
  kill) node "$2" kill ;;
  start-node) node "$2" start; wait_ready "$2" ;;
  bootstrap) echo "$bootstrap" ;;
  *) echo "usage: $0 start|stop|kill N|start-node N|bootstrap" >&2; exit 2 ;;
esac
