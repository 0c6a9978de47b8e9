#!/usr/bin/env bash
# Storm measurement: CLIENTS client IDs each taken over three times (3 x
# CLIENTS events) through a local Mosquitto whose queue holds them all, at the
# publisher's pace, into the release exporter. Prints how long publishing and
# counting took, whether every event was counted, the exporter's RSS and idle
# CPU with every client flapping, and its RSS and tracked clients once the
# flapping window (shortened here with --flapping.window) has passed, to show
# memory is given back. Everything is on 127.0.0.1 and bounded in time.
#
#   scripts/storm.sh [CLIENTS] [WINDOW]     (defaults 200000, 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-200000}
WINDOW=${2:-30s}
SKEW=5s
CHUNK_CLIENTS=3334   # three events each: about 10k lines per mosquitto_pub run
LIMIT=600

INFLIGHT=100 . scripts/bench-env.sh

rss() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' /proc/$exporter/status; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' /proc/$exporter/stat; }
"$exe" --mqtt.url "mqtt://127.0.0.1:$port" --mqtt.client-id storm-exporter --mqtt.topic '$events/#' \
  --web.listen-address "127.0.0.1:$web" --log.level error \
  --flapping.window "$WINDOW" --event.max-clock-skew "$SKEW" &
exporter=$!
wait_for 30 ready
echo "==> exporter RSS before: $(rss) MiB"

python3 - "$CLIENTS" "$CHUNK_CLIENTS" "$dir" <<'PY'
import sys
n, chunk, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for c in range(0, n, chunk):
    with open(f"{d}/chunk-{c // chunk:05d}", "w") as f:
        for r in range(3):
            for i in range(c, min(n, c + chunk)):
                f.write('{"event":"client.disconnected","clientid":"storm-%07d","reason":"takenover","peername":"10.%d.%d.%d:1883"}\n'
                        % (i, r, (i >> 8) & 255, i & 255))
PY
total=$((3 * CLIENTS))
echo "==> publishing $total takeovers from $CLIENTS client IDs"
start=$(date +%s.%N)
for f in "$dir"/chunk-*; do
  mosquitto_pub -p "$port" -q 1 -t '$events/client_disconnected' -l < "$f"
done
counted() { [ "$(metric 'mqtt_client_disconnects_total{reason="takeovered"}')" = "$total" ]; }
wait_for $LIMIT counted
end=$(date +%s.%N)
sleep 2
flapping=$(metric 'mqtt_flapping_clients{kind="takeover"}')
rss_storm=$(rss)
c0=$(cpu); sleep 10; c1=$(cpu)
python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); print(f'==> counted {sys.argv[3]} of {sys.argv[3]} in {t:.1f} s ({int(sys.argv[3])/t:,.0f} events/s, the publisher\'s pace)')" "$start" "$end" "$total"
echo "==> flapping now: $flapping; RSS $rss_storm MiB; idle CPU $(python3 -c "print(f'{(float($c1) - float($c0)) / 10 * 100:.2f}')") % of a core over 10 s"
echo "==> waiting for the window ($WINDOW) and the skew ($SKEW) to pass"
drained() { [ "$(metric 'mqtt_exporter_tracked_clients')" = "0" ] && [ "$(metric 'mqtt_flapping_clients{kind="takeover"}')" = "0" ]; }
wait_for $LIMIT drained
sleep 2
echo "==> after the window: flapping 0, tracked clients 0, expired $(metric mqtt_exporter_tracked_clients_expired_total); RSS $(rss) MiB"
