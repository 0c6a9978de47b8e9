#!/usr/bin/env bash
# HTTP ingest under load, against the MQTT path in the same run.
#
# One release exporter with --mqtt.disable and a token file; `simulate
# --ingest` posts a fleet at a fixed rate for a fixed time in each format:
# Event Grid and JSON in batches of 1,000, EMQX one event a request on
# keep-alive connections. For each: events/s counted, and the exporter's CPU
# per event (from /proc), and /metrics latency (200 scrapes, p50/p99) while
# it runs. Then the MQTT path: N QoS 1 events queued at a local Mosquitto,
# drained by a fresh exporter, its CPU per event. Prints each and the ratio
# of each HTTP format's CPU per event to the MQTT path's. Bounded in time.
#
#   scripts/ingest-load.sh [SECONDS] [RATE]     (default 10 s at 20,000 disconnects/s)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-10}
RATE=${2:-20000}
MQTT_N=300000
CHUNK=10000
LIMIT=300

INFLIGHT=1000 . scripts/bench-env.sh

token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "$token" > "$dir/tokens"
"$exe" --mqtt.disable --ingest.token-file "$dir/tokens" --web.listen-address "127.0.0.1:$web" --log.level warn &
exporter=$!
wait_for 30 ready

cpu_of() { awk '{ print $14 + $15 }' /proc/$1/stat; }
hz=$(getconf CLK_TCK)
counted() { metric 'mqtt_exporter_events_received_total{kind="disconnected"}'; }
results=()

for format in eventgrid json emqx; do
  before_cpu=$(cpu_of $exporter)
  before=$(counted)
  start=$(date +%s.%N)
  # the load generator runs niced: on 2 cores it would otherwise decide
  # the scrape latency measured here, not the exporter
  timeout $LIMIT nice -n 10 "$exe" simulate --ingest "http://127.0.0.1:$web" --format "$format" \
    --ingest.token-file "$dir/tokens" --ingest.connections 8 --rate "$RATE" \
    --clients 200000 --duration "${SECONDS_EACH}s" --seed 3 --json > "$dir/sim-$format.json" &
  sim=$!
  # /metrics latency while the load runs
  : > "$dir/scrapes-$format"
  for _ in $(seq 1 200); do
    curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:$web/metrics" >> "$dir/scrapes-$format"
    sleep 0.02
  done
  wait $sim
  end=$(date +%s.%N)
  after=$(counted)
  after_cpu=$(cpu_of $exporter)
  results+=("$format $before $after $start $end $before_cpu $after_cpu")
done

python3 - "$hz" "$dir" "${results[@]}" > "$dir/http.txt" <<'PY'
import sys, json
hz, d = int(sys.argv[1]), sys.argv[2]
for line in sys.argv[3:]:
    fmt, b, a, s, e, bc, ac = line.split()
    n = float(a) - float(b)
    secs = float(e) - float(s)
    cpu = (int(ac) - int(bc)) / hz
    sim = json.load(open(f"{d}/sim-{fmt}.json"))
    disc = sum(sim["sent"]["disconnects"].values())
    lat = sorted(float(x) for x in open(f"{d}/scrapes-{fmt}") if x.strip())
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    ok = sim["answers"].get("200", 0) == sim["requests"] and int(n) == disc
    print(f"{fmt} {int(n)} {secs:.2f} {cpu:.2f} {cpu * 1e6 / max(n, 1):.2f} {sim['requests']} {p(0.5):.2f} {p(0.99):.2f} {'ok' if ok else 'MISMATCH'}")
PY
kill -TERM $exporter; wait $exporter || true; exporter=""

echo "==> the MQTT path: $MQTT_N events queued at Mosquitto, then drained"
"$exe" --mqtt.url "mqtt://127.0.0.1:$port" --mqtt.client-id ingest-load-mqtt --mqtt.topic '$events/#' \
  --web.listen-address "127.0.0.1:$web" --log.level warn &
exporter=$!
wait_for 30 ready
kill -TERM $exporter; wait $exporter || true; exporter=""
python3 - "$MQTT_N" "$CHUNK" "$dir" <<'PY'
import sys
n, chunk, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for c in range(0, n, chunk):
    with open(f"{d}/chunk-{c // chunk:05d}", "w") as f:
        for i in range(c, min(n, c + chunk)):
            f.write('{"event":"client.disconnected","clientid":"device-%08d","reason":"keepalive_timeout","timestamp":%d}\n' % (i, 1717651184811 + i))
PY
for f in "$dir"/chunk-*; do mosquitto_pub -p "$port" -q 1 -t '$events/client_disconnected' -l < "$f"; done
"$exe" --mqtt.url "mqtt://127.0.0.1:$port" --mqtt.client-id ingest-load-mqtt --mqtt.topic '$events/#' \
  --web.listen-address "127.0.0.1:$web" --log.level warn &
exporter=$!
drained() { [ "$(counted)" = "$MQTT_N" ]; }
wait_for $LIMIT drained
mqtt_cpu=$(cpu_of $exporter)

python3 - "$hz" "$MQTT_N" "$mqtt_cpu" "$dir/http.txt" <<'PY'
import sys
hz, n, cpu = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / int(sys.argv[1])
mqtt = cpu * 1e6 / n
print(f"{'path':<10} {'events':>9} {'seconds':>8} {'events/s':>10} {'CPU us/ev':>10} {'vs MQTT':>8} {'requests':>9} {'/metrics p50':>13} {'p99':>7}")
print(f"{'mqtt':<10} {n:>9} {'':>8} {'':>10} {mqtt:>10.2f} {1.0:>8.2f}")
bad = False
for line in open(sys.argv[4]):
    fmt, ev, secs, c, per, req, p50, p99, ok = line.split()
    print(f"{fmt:<10} {ev:>9} {secs:>8} {int(ev) / float(secs):>10,.0f} {float(per):>10.2f} {float(per) / mqtt:>8.2f} {req:>9} {p50 + ' ms':>13} {p99 + ' ms':>7}  {ok}")
    bad |= ok != "ok"
print("RESULT", "FAILED" if bad else "ok")
sys.exit(1 if bad else 0)
PY
