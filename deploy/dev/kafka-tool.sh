#!/usr/bin/env bash
# Runs one of Apache Kafka's command-line tools with the pinned jars that
# kafka.sh runs the broker with, e.g.
#
#   kafka-tool.sh org.apache.kafka.tools.AclCommand --bootstrap-server 127.0.0.1:9092 --list
#   kafka-tool.sh kafka.admin.ConfigCommand --bootstrap-server 127.0.0.1:9092 \
#     --alter --entity-type users --entity-name bridge --add-config 'SCRAM-SHA-512=[password=...]'
#
# (the class names of Kafka's bin/kafka-acls.sh and bin/kafka-configs.sh).
# The heap is KAFKA_TOOL_HEAP (default 256m).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
class="${1:?usage: kafka-tool.sh CLASS [ARGS...]}"
shift
lib="$(bash "$here/install-jvm.sh" kafka)"
exec java "-Xmx${KAFKA_TOOL_HEAP:-256m}" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
  -cp "$lib/*" "-Dlog4j2.configurationFile=$here/jvm/log4j2.xml" "$class" "$@"
