#!/usr/bin/env bash
# Try the exporter in one command: installs Mosquitto if missing, starts it on
# 127.0.0.1:18830, starts the exporter on 127.0.0.1:9883, publishes a few
# sample events (one per source format, plus a client-ID conflict), and keeps
# running until Ctrl-C. Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
port=18830
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q mosquitto mosquitto-clients
fi
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
cargo build --release -q
dir=$(mktemp -d)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$dir/mosquitto.conf"
"$mosq" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
broker=$!
trap 'kill $broker $exporter 2>/dev/null; rm -rf "$dir"' EXIT
sleep 0.5
./target/release/mqtt-disconnect-exporter --mqtt.url "mqtt://127.0.0.1:$port" \
  --mqtt.topic '$events/#' --mqtt.topic 'emqx/events/#' --mqtt.topic 'sys/brokers/+/clients/+/+' &
exporter=$!
sleep 1.5
for f in tests/fixtures/tdmq/*.json; do
  name=$(basename "$f" .json)
  case "$name" in client_disconnected_*) name=client_disconnected ;; esac
  mosquitto_pub -p "$port" -q 1 -t "\$events/$name" -f "$f"
done
for f in tests/fixtures/emqx5/client_disconnected_*.json; do
  mosquitto_pub -p "$port" -q 1 -t emqx/events/client_disconnected -f "$f"
done
now=$(($(date +%s) * 1000))
for i in 0 1 2; do
  mosquitto_pub -p "$port" -q 1 -t emqx/events/client_disconnected -m \
    "{\"event\":\"client.disconnected\",\"clientid\":\"shared-id\",\"reason\":\"takenover\",\"peername\":\"198.51.100.$((i % 2 + 1)):1883\",\"disconnected_at\":$((now + i))}"
done
echo
echo "Exporter on http://127.0.0.1:9883/ (metrics: /metrics, flapping clients: /api/v1/flapping)."
echo "Publish more with: mosquitto_pub -p $port -t '\$events/client_disconnected' -m '{\"clientid\":\"d1\",\"reason\":\"keepalive_timeout\"}'"
echo "Ctrl-C to stop."
wait "$exporter"
