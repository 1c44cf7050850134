#!/usr/bin/env bash
# `make test`: start a fresh Kafka and PostgreSQL, run the whole suite, stop them, keep pytest's exit code.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="$root/.venv/bin/python"
data="$root/.data/test"
export KAFKA_PORT="${TEST_KAFKA_PORT:-19092}"
export KAFKA_DATA_DIR="$data/kafka"

stop_services() {
  infra/kafka/kafka.sh stop || true
  "$python" -W ignore -m infra.postgres stop "$data/postgres" || true
}
stop_services
rm -rf "$data"
mkdir -p "$data"
trap stop_services EXIT

infra/kafka/kafka.sh start
DATABASE_URL="$("$python" -W ignore -m infra.postgres start "$data/postgres")"
export DATABASE_URL
export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
unset API_TOKENS API_TOKEN_HASHES REINTEGRATION_TOKEN REINTEGRATION_PURPOSE OIDC_ISSUER OIDC_AUDIENCE OIDC_JWKS_URL KAFKA_TOPIC_PREFIX REINTEGRATION_ENV
export REQUIRE_BROWSER=1  # the console's browser tests fail, never skip, without chromium
export TEST_ARTIFACTS="$data/artifacts"  # screenshots of the browser tests
echo "PostgreSQL: $DATABASE_URL   Kafka: $KAFKA_BOOTSTRAP_SERVERS" >&2

# Two workers, one per core (pytest-xdist), each test file on one of them (its fixtures are
# set up once); then the tests marked `alone` (the Schemathesis fuzzing: on xdist's workers one
# case of each of its tests ran) in a run of their own.
# pytest's exit code 5 is "no test selected" (PYTEST_ARGS selected none in that part).
set +e
"$root/.venv/bin/pytest" -n 2 --dist loadfile --part shared "$@"
shared=$?
if [ "$shared" -eq 2 ]; then exit 2; fi  # interrupted (Ctrl-C): not the second run too
"$root/.venv/bin/pytest" --part alone "$@" -n 0
alone=$?
set -e
if [ "$shared" -eq 5 ] && [ "$alone" -eq 5 ]; then exit 5; fi
for status in "$shared" "$alone"; do
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
done
exit 0
