#!/usr/bin/env bash
# Runs Apicurio Registry (a Confluent-compatible schema registry: its
# Confluent API is under /apis/ccompat/v7) on 127.0.0.1:PORT, storage in
# memory (schemas live as long as the process). Used by `make run` and the
# test harness, so its settings live here only.
#
#   registry.sh PORT
#
# The heap is REGISTRY_HEAP (default 256m). Quarkus would otherwise open a
# management port on 0.0.0.0:9000; it is turned off. The script execs the
# JVM, so its pid is the registry's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${1:?usage: registry.sh PORT}"

jar="$(bash "$here/install-jvm.sh" registry)"
exec java "-Xmx${REGISTRY_HEAP:-256m}" \
  -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$port" \
  -Dquarkus.management.enabled=false \
  -jar "$jar"
