#!/usr/bin/env bash
# `make run` (which installs the npm packages first): the whole thing on this
# machine. Starts Apache Kafka (one KRaft node on 127.0.0.1:9092, data under
# deploy/dev/.run) unless KAFKA_BROKERS names a cluster you already have,
# Apicurio Registry (a Confluent-compatible schema registry on 127.0.0.1:8081,
# schemas in memory) unless SCHEMA_REGISTRY_URL names one you already have
# (the Confluent API's root), the bridge on 127.0.0.1:3000 (it creates the CRM
# topics and serves the dashboard), the demo producer (it registers its
# schemas in the registry), and a watcher that prints what a dashboard
# receives.
# Ctrl-C stops everything this script started, the bridge before the
# registry and the broker.
set -euo pipefail
cd "$(dirname "$0")/../.."

BRIDGE_URL=http://127.0.0.1:3000
# /readyz, /stats, /metrics: the internal port (deploy/dev/bridge.toml).
INTERNAL_URL=http://127.0.0.1:9090
CONFIG=deploy/dev/bridge.toml
logs=deploy/dev/.run
mkdir -p "$logs"
step() { echo "==> $*"; }

# Stopped in the reverse order of starting: clients and producer first, then
# the bridge (its last commit needs the broker), the registry, the broker last.
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || continue
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup INT TERM EXIT

ports=(3000)
[ -n "${KAFKA_BROKERS:-}" ] || ports+=(9092 9093)
[ -n "${SCHEMA_REGISTRY_URL:-}" ] || ports+=(8081)
for port in "${ports[@]}"; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    echo "port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

step "building the bridge (release; the first build takes a few minutes)"
cargo build --release --bin crm-bridge
bridge=target/release/crm-bridge

if [ -n "${KAFKA_BROKERS:-}" ]; then
  brokers="$KAFKA_BROKERS"
  step "Kafka: using $brokers (KAFKA_BROKERS)"
else
  brokers=127.0.0.1:9092
  step "Kafka: Apache Kafka $(bash deploy/dev/install-jvm.sh kafka | sed 's:.*/kafka-\([^-]*\).*:\1:') on $brokers (log: $logs/kafka.log)"
  # Fresh every run: the demo's history would otherwise pile up across runs.
  rm -rf "$logs/kafka"
  bash deploy/dev/kafka.sh "$logs/kafka" 1 9092 9093 1@127.0.0.1:9093 >"$logs/kafka.log" 2>&1 &
  pids+=($!)
  until grep -qs "Kafka Server started" "$logs/kafka.log"; do
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "Kafka exited; see $logs/kafka.log" >&2; tail -20 "$logs/kafka.log" >&2; exit 1; }
    sleep 0.2
  done
fi
export CRM_BRIDGE_KAFKA__BROKERS="$brokers"

if [ -n "${SCHEMA_REGISTRY_URL:-}" ]; then
  registry="$SCHEMA_REGISTRY_URL"
  step "schema registry: using $registry (SCHEMA_REGISTRY_URL)"
else
  # Apicurio serves the Confluent API under /apis/ccompat/v7.
  registry=http://127.0.0.1:8081/apis/ccompat/v7
  version=$(bash deploy/dev/install-jvm.sh registry | sed 's:.*/apicurio-registry-app-::; s:-runner\.jar$::')
  step "schema registry: Apicurio Registry $version on $registry (log: $logs/registry.log)"
  bash deploy/dev/registry.sh 8081 >"$logs/registry.log" 2>&1 &
  pids+=($!)
  until curl -sf "$registry/subjects" >/dev/null; do
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "the schema registry exited; see $logs/registry.log" >&2; tail -20 "$logs/registry.log" >&2; exit 1; }
    sleep 0.2
  done
fi
# The bridge reads writer schemas there; the demo producer registers its own.
export CRM_BRIDGE_SCHEMAS__REGISTRY_URL="$registry"

step "bridge: starting on $BRIDGE_URL (log: $logs/bridge.log)"
"$bridge" --config "$CONFIG" serve >"$logs/bridge.log" 2>&1 &
pids+=($!)
until curl -sf "$INTERNAL_URL/readyz" >/dev/null; do
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "the bridge exited; see $logs/bridge.log" >&2; tail -20 "$logs/bridge.log" >&2; exit 1; }
  sleep 0.2
done
step "bridge: $BRIDGE_URL ready"

"$bridge" --config "$CONFIG" demo --rate 2 >"$logs/demo.log" 2>&1 &
pids+=($!)
echo "demo producer: 2 events/s across org-acme and org-globex, schemas registered in $registry (log: $logs/demo.log)"

alice=$("$bridge" token --user user_alice --name "Alice Martin" --org org-acme)
bob=$("$bridge" token --user user_bob --name "Bob Chen" --org org-acme)
dave=$("$bridge" token --user user_dave --name "Dave Okafor" --org org-globex)
cat <<TXT

  Dashboard: $BRIDGE_URL/   (open it in a browser, pick a demo user)
  Operations: $BRIDGE_URL/#ops

Connect with the stock socket.io-client (tokens valid 24 h, signed with the dev secret):
  io("$BRIDGE_URL", { auth: { token: "<token>" } })
  Alice (org-acme):   $alice
  Dave (org-globex):  $dave
  API key (org-acme): dev-api-key-acme-0123456789abcdef
Then: socket.emit("subscribe", { resource: "deal", filter: { pipelineId: "pipeline_acme_sales" } })
 or:  socket.emit("join-room", { type: "pipeline", id: "pipeline_acme_sales" }, console.log)
More tokens: $bridge token --user ID --name NAME --org ORG
Health: $BRIDGE_URL/healthz  Readiness: $INTERNAL_URL/readyz  Counters: $INTERNAL_URL/stats  Prometheus: $INTERNAL_URL/metrics

Live events Alice's dashboard receives; her teammate Bob is in the same
pipeline room, typing notes every 4 s (Ctrl-C stops everything).
Dashboard: $BRIDGE_URL/
TXT
node deploy/dev/watch.mjs "$BRIDGE_URL" "$bob" org-acme pipeline_acme_sales 4000 &
pids+=($!)
node deploy/dev/watch.mjs "$BRIDGE_URL" "$alice" org-acme pipeline_acme_sales &
pids+=($!)
wait -n "${pids[@]}"
echo "a process exited; see $logs/" >&2
