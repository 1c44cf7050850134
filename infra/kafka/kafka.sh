#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1.
#
#   infra/kafka/kafka.sh fetch    resolve the broker jars once into infra/kafka/.cache/libs
#   infra/kafka/kafka.sh start    format storage if new, start, wait for a metadata answer
#   infra/kafka/kafka.sh stop     stop cleanly (SIGTERM, then SIGKILL after 30 s)
#   infra/kafka/kafka.sh kill     SIGKILL (a crash, for fault tests)
#   infra/kafka/kafka.sh status   exit 0 when the broker answers
#
# KAFKA_PORT (default 9092) and KAFKA_DATA_DIR (default .data/kafka-$KAFKA_PORT) choose where.
# One node of a cluster (infra/kafka/cluster.sh): KAFKA_NODE_ID, KAFKA_QUORUM_VOTERS,
# KAFKA_CLUSTER_ID, KAFKA_INTERNAL_REPLICATION (the internal topics' replication factor; their
# min.insync.replicas is one less) and KAFKA_NO_WAIT=1 (start without waiting for readiness).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
libs="$here/.cache/libs"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
data="${KAFKA_DATA_DIR:-$root/.data/kafka-$port}"
pidfile="$data/kafka.pid"
python="${PYTHON:-$root/.venv/bin/python}"
node_id="${KAFKA_NODE_ID:-1}"
voters="${KAFKA_QUORUM_VOTERS:-$node_id@127.0.0.1:$controller_port}"
internal_rf="${KAFKA_INTERNAL_REPLICATION:-1}"
internal_isr=$(( internal_rf > 1 ? internal_rf - 1 : 1 ))

fetch() {
  if compgen -G "$libs/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  echo "fetching Apache Kafka jars (once) into $libs" >&2
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$libs" -DincludeScope=runtime
}

write_config() {
  mkdir -p "$data/logs" "$data/log-dirs"
  # The project's one message limit (infra/contract.py), also the default for topics the
  # project does not create itself.
  local max_message_bytes
  max_message_bytes="$(cd "$root" && "$python" -c 'from infra.contract import MAX_MESSAGE_BYTES; print(MAX_MESSAGE_BYTES)')"
  cat > "$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data/log-dirs
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=$internal_rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$internal_rf
transaction.state.log.min.isr=$internal_isr
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$internal_rf
share.coordinator.state.topic.min.isr=$internal_isr
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
message.max.bytes=$max_message_bytes
replica.fetch.max.bytes=$max_message_bytes
PROPS
}

java_cmd() {
  java -Xms256m -Xmx${KAFKA_HEAP:-768m} -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -Dkafka.logs.dir="$data/logs" \
    -cp "$libs/*" "$@"
}

running() {
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

ready() {
  "$python" -m infra.kafka_ready "127.0.0.1:$port" "${1:-1}"
}

start() {
  fetch
  if running; then
    echo "Kafka already running (pid $(cat "$pidfile")) on 127.0.0.1:$port" >&2
    ready 60
    return 0
  fi
  write_config
  if [[ ! -f "$data/log-dirs/meta.properties" ]]; then
    cluster_id="${KAFKA_CLUSTER_ID:-$(java_cmd kafka.tools.StorageTool random-uuid | tail -n 1)}"
    java_cmd kafka.tools.StorageTool format --ignore-formatted \
      -t "$cluster_id" -c "$data/server.properties" >"$data/logs/format.log" 2>&1 \
      || { cat "$data/logs/format.log" >&2; exit 1; }
  fi
  nohup java -Xms256m -Xmx"${KAFKA_HEAP:-768m}" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2.properties" \
    -Dkafka.logs.dir="$data/logs" \
    -cp "$libs/*" kafka.Kafka "$data/server.properties" \
    >"$data/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if [[ "${KAFKA_NO_WAIT:-}" == 1 ]]; then
    return 0
  fi
  if ! (cd "$root" && ready 90); then
    echo "Kafka did not become ready; last lines of its log:" >&2
    tail -n 30 "$data/logs/server.log" "$data/logs/stdout.log" >&2 || true
    stop
    exit 1
  fi
  echo "Kafka ready on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2
}

stop() {
  if ! running; then
    rm -f "$pidfile"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      echo "Kafka on 127.0.0.1:$port stopped" >&2
      return 0
    fi
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "Kafka on 127.0.0.1:$port killed after 30 s" >&2
}

kill_now() {
  if running; then
    kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  kill) kill_now ;;
  status) (cd "$root" && ready 1) ;;
  *) echo "usage: $0 fetch|start|stop|kill|status" >&2; exit 2 ;;
esac
