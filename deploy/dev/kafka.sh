#!/usr/bin/env bash
# Runs one Apache Kafka node in KRaft mode (combined broker and controller) on
# loopback, formatting its storage first if it is new. Used by `make run`, the
# test harness and the benchmarks, so the broker's settings live here only.
#
#   kafka.sh DATA_DIR NODE_ID PORT CONTROLLER_PORT VOTERS [KEY=VALUE ...]
#
# VOTERS is `controller.quorum.voters` (e.g. 1@127.0.0.1:9093); a cluster's
# nodes share it and CLUSTER_ID (any 22-character base64 id; one is made for a
# single node). KEY=VALUE pairs are added to the broker's properties. The heap
# is KAFKA_HEAP (default 512m); KAFKA_JVM_OPTS adds JVM flags (the tests ask
# for a faster start-up). The script execs the JVM, so its pid is the
# broker's: signals (SIGSTOP, SIGKILL) reach the broker itself.
# KAFKA_FORMAT_ARGS adds arguments to the storage format of a new node (e.g.
# `--add-scram SCRAM-SHA-512=[name=bridge,password=...]`: SASL/SCRAM users
# that exist from the first start).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$1" node="$2" port="$3" controller_port="$4" voters="$5"
shift 5

lib="$(bash "$here/install-jvm.sh" kafka)"
java=(java "-Xmx${KAFKA_HEAP:-512m}" ${KAFKA_JVM_OPTS:-} -cp "$lib/*" "-Dlog4j2.configurationFile=$here/jvm/log4j2.xml")

voter_count=$(tr ',' '\n' <<<"$voters" | wc -l)
replicas=$((voter_count < 3 ? voter_count : 3))
mkdir -p "$data"
properties="$data/server.properties"
cat >"$properties" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/log
# Internal topics sized for one machine: a few partitions, replicated on up
# to three nodes; the first group join then takes milliseconds, not seconds.
offsets.topic.num.partitions=4
offsets.topic.replication.factor=$replicas
transaction.state.log.num.partitions=4
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$((replicas < 2 ? 1 : 2))
# A group's first member is assigned its partitions at once.
group.initial.rebalance.delay.ms=0
num.partitions=2
default.replication.factor=$replicas
PROPS
printf '%s\n' "$@" >>"$properties"

if [ ! -f "$data/log/meta.properties" ]; then
  # What `StorageTool random-uuid` prints (16 random bytes, base64url), without a JVM.
  cluster="${CLUSTER_ID:-$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)}"
  # `--cluster-id=`: an id may start with `-`, which would read as an option.
  # shellcheck disable=SC2086 # KAFKA_FORMAT_ARGS is a list of arguments
  "${java[@]}" kafka.tools.StorageTool format --ignore-formatted "--cluster-id=$cluster" \
    -c "$properties" ${KAFKA_FORMAT_ARGS:-} >/dev/null
fi
exec "${java[@]}" kafka.Kafka "$properties"
