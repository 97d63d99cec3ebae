#!/usr/bin/env bash
# Installs a JVM service of the dev and test stack from Maven Central into a
# per-user cache outside the repository (so fresh clones on this machine, CI
# runs among them, reuse it), and prints where it is on stdout:
#   install-jvm.sh kafka     the directory of Apache Kafka's jars (a classpath: DIR/*)
#   install-jvm.sh registry  Apicurio Registry's runnable jar
# The versions are pinned in jvm/pom.xml; progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pom="$here/jvm/pom.xml"
what="${1:?usage: install-jvm.sh kafka|registry}"

version_of() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$pom"; }
cache="${CRM_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm-bridge}"
mkdir -p "$cache"

# One install at a time: parallel runs on a fresh machine wait for the first.
exec 9>"$cache/install-jvm.lock"
flock 9

mvn_quiet() {
  local log="$cache/maven-$what.log"
  mvn -B -q -f "$pom" "$@" >"$log" 2>&1 || { echo "maven failed; see $log" >&2; tail -20 "$log" >&2; exit 1; }
}

case "$what" in
  kafka)
    # Named by the POM's contents too: a jar added there is a new install.
    dir="$cache/kafka-$(version_of kafka.version)-$(sha256sum "$pom" | cut -c1-12)"
    if [ ! -f "$dir/.complete" ]; then
      echo "fetching Apache Kafka $(version_of kafka.version) from Maven Central into $dir (once, ~1 min)" >&2
      rm -rf "$dir"
      mvn_quiet dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$dir"
      touch "$dir/.complete"
    fi
    echo "$dir"
    ;;
  registry)
    version="$(version_of apicurio.version)"
    dir="$cache/apicurio-registry-$version"
    if [ ! -f "$dir/.complete" ]; then
      echo "fetching Apicurio Registry $version from Maven Central into $dir (once, ~1 min)" >&2
      rm -rf "$dir" "$dir.download"
      mvn_quiet dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
        -DoutputDirectory="$dir.download"
      mkdir -p "$dir"
      tar -xzf "$dir.download"/apicurio-registry-app-*.tar.gz -C "$dir"
      rm -rf "$dir.download"
      touch "$dir/.complete"
    fi
    echo "$dir/apicurio-registry-app-$version-runner.jar"
    ;;
  *) echo "install-jvm.sh: unknown service '$what' (kafka or registry)" >&2; exit 2 ;;
esac
