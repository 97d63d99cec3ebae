#!/usr/bin/env bash
# Installs the dev/test broker (tansu, a Kafka-wire-compatible broker from
# crates.io) into a per-user cache outside the repository, so fresh clones on
# the same machine (CI runs) reuse it instead of spending ~10 minutes compiling.
# Prints the path of the installed binary on stdout.
set -euo pipefail

TANSU_VERSION=0.6.0
# `dynostore` gives the `memory://` storage engine: fast, nothing on disk.
# `libsql` gives `sqlite://`, which enforces retention (one test needs it).
TANSU_FEATURES=dynostore,libsql

root="${CRM_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm-bridge}/tansu-${TANSU_VERSION}-${TANSU_FEATURES}"
bin="$root/bin/tansu"

# One install at a time: parallel test runs on a fresh machine wait for the
# first instead of each compiling tansu.
mkdir -p "$(dirname "$root")"
exec 9>"$root.lock"
flock 9

if [ ! -x "$bin" ]; then
  echo "installing tansu $TANSU_VERSION (features: $TANSU_FEATURES) into $root; this takes ~10 minutes once" >&2
  cargo install --locked --quiet tansu --version "=$TANSU_VERSION" \
    --no-default-features --features "$TANSU_FEATURES" --root "$root" >&2
fi
echo "$bin"
