#!/usr/bin/env bash
# `make run`: the whole thing on this machine. Starts the dev broker (tansu) on
# 127.0.0.1:9092, the bridge on 127.0.0.1:3000 (it creates the CRM topics and
# serves the dashboard), the demo producer, and a watcher that prints what a
# dashboard receives.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/../.."

BROKER_PORT=9092
BRIDGE_URL=http://127.0.0.1:3000
CONFIG=deploy/dev/bridge.toml
logs=deploy/dev/.run
mkdir -p "$logs"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]:-nothing}"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

for port in 9092 3000; do
  if ss -ltn "sport = :$port" | grep -q LISTEN; then
    echo "port $port is already in use; stop whatever listens there first" >&2
    exit 1
  fi
done

tansu=$(bash deploy/dev/install-tansu.sh)
(cd deploy/dev && npm ci --no-audit --no-fund --silent)
# socket.io-client's browser build, which the bridge builds into its dashboard.
(cd web && npm ci --no-audit --no-fund --silent)
cargo build --release --bin crm-bridge
bridge=target/release/crm-bridge

"$tansu" broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
  --storage-engine memory://tansu/ >"$logs/tansu.log" 2>&1 &
pids+=($!)
until (exec 3<>/dev/tcp/127.0.0.1/$BROKER_PORT) 2>/dev/null; do sleep 0.2; done
echo "broker: tansu on 127.0.0.1:$BROKER_PORT (log: $logs/tansu.log)"

"$bridge" --config "$CONFIG" serve >"$logs/bridge.log" 2>&1 &
pids+=($!)
until curl -sf "$BRIDGE_URL/readyz" >/dev/null; do
  kill -0 "${pids[-1]}" 2>/dev/null || { echo "the bridge exited; see $logs/bridge.log" >&2; tail -20 "$logs/bridge.log" >&2; exit 1; }
  sleep 0.2
done
echo "bridge: $BRIDGE_URL ready (log: $logs/bridge.log)"

"$bridge" --config "$CONFIG" demo --rate 2 >"$logs/demo.log" 2>&1 &
pids+=($!)
echo "demo producer: 2 events/s across org-acme and org-globex (log: $logs/demo.log)"

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
Health: $BRIDGE_URL/healthz  Readiness: $BRIDGE_URL/readyz  Counters: $BRIDGE_URL/stats

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
