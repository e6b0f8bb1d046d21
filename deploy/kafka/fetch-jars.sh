#!/usr/bin/env bash
# Fetch Apache Kafka jars (see pom.xml beside this script) from Maven Central into
# deploy/kafka/lib. Idempotent and cached: does nothing when the kafka jar is already there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lib="$here/lib"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
marker="$lib/kafka_2.13-${version}.jar"

if [[ -f "$marker" ]]; then
  echo "kafka jars: cached in ${lib#"$PWD"/} (kafka_2.13-${version})"
  exit 0
fi

command -v mvn >/dev/null 2>&1 || { echo "fetch-jars: mvn (Maven) not found; install it (apt-get install maven)" >&2; exit 1; }
command -v java >/dev/null 2>&1 || { echo "fetch-jars: java not found; Kafka needs Java 17+" >&2; exit 1; }

echo "kafka jars: fetching org.apache.kafka:kafka_2.13:${version} and its runtime dependencies from Maven Central"
tmp="$lib.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
  -Dkafka.lib.dir="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'  # Maven 3.8 prints colour codes even with -q -B
# Swap in atomically so an interrupted fetch never leaves a half-filled lib/ that looks cached.
rm -rf "$lib"
mv "$tmp" "$lib"
trap - EXIT
echo "kafka jars: $(ls "$lib" | wc -l) jars in ${lib#"$PWD"/}"
