#!/usr/bin/env bash
# Start a single-node Apache Kafka 4.x (KRaft broker+controller) for development, in the
# foreground, from the jars in deploy/kafka/lib (fetched on first use). Ctrl-C stops it.
#
#   bash deploy/kafka/start-kafka.sh                 # 127.0.0.1:9092, data in .winwin/kafka
#   KAFKA_PORT=19092 KAFKA_DATA=/tmp/k bash deploy/kafka/start-kafka.sh
#   KAFKA_FRESH=1 bash deploy/kafka/start-kafka.sh   # wipe the data dir first
#
# Then: export WINWIN_KAFKA_BOOTSTRAP=127.0.0.1:9092
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
host="${KAFKA_HOST:-127.0.0.1}"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
data="${KAFKA_DATA:-$root/.winwin/kafka}"
heap="${KAFKA_HEAP:-512m}"

bash "$here/fetch-jars.sh"
java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$java" >/dev/null || { echo "start-kafka: java not found (Kafka 4 needs Java 17+)" >&2; exit 1; }

if [[ "${KAFKA_FRESH:-0}" == 1 ]]; then rm -rf "$data"; fi
mkdir -p "$data"
config="$data/server.properties"
sed -e "s#@HOST@#$host#g" -e "s#@BROKER_PORT@#$port#g" \
    -e "s#@CONTROLLER_PORT@#$controller_port#g" -e "s#@LOG_DIR@#$data/log#g" \
    "$here/server.properties" > "$config"

jvm=(-Xms128m "-Xmx$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
     -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
     -Dorg.slf4j.simpleLogger.showDateTime=true -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS)
cp="$here/lib/*"

if [[ ! -f "$data/log/meta.properties" ]]; then
  # Kafka's Uuid format: 16 random bytes, URL-safe base64 without padding, no leading '-'.
  cluster_id=""
  while [[ -z "$cluster_id" || "$cluster_id" == -* ]]; do
    cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  echo "start-kafka: formatting $data/log (cluster id $cluster_id, standalone controller)"
  "$java" "${jvm[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$cp" \
    kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$config"
fi

echo "start-kafka: broker on $host:$port (controller $host:$controller_port), data $data/log"
echo "start-kafka: export WINWIN_KAFKA_BOOTSTRAP=$host:$port"
exec "$java" "${jvm[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel="${KAFKA_LOG_LEVEL:-warn}" \
  -cp "$cp" kafka.Kafka "$config"
