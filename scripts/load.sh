#!/usr/bin/env bash
# End-to-end load test: N events through a local Mosquitto, drained by the
# exporter and by a reference subscriber (mosquitto_sub writing to /dev/null).
#
# Both subscribers get a persistent session first; then N QoS 1 events are
# published (in chunks of 10k lines, as Mosquitto 2.0 cuts longer
# `mosquitto_pub -l` streams) and queue at the broker for both; then each
# subscriber drains its backlog alone and is timed, so the publisher's speed
# does not enter the measurement. Prints both times, the ratio, the
# exporter's CPU seconds and peak RSS, and checks the exporter counted every
# event. Everything is on 127.0.0.1 and bounded in time.
#
#   scripts/load.sh [N]        (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
CHUNK=10000
LIMIT=900   # seconds any single wait may take

INFLIGHT=1000 . scripts/bench-env.sh

start_exporter() {
  "$exe" --mqtt.url "mqtt://127.0.0.1:$port" --mqtt.client-id load-exporter \
    --mqtt.topic '$events/#' --web.listen-address "127.0.0.1:$web" --log.level warn &
  exporter=$!
}

echo "==> creating persistent sessions"
start_exporter
wait_for 30 ready
kill -TERM $exporter; wait $exporter || true; exporter=""
timeout 5 mosquitto_sub -p "$port" -c -i load-reference -q 1 -t '$events/#' -W 1 >/dev/null || true

echo "==> publishing $N events (QoS 1, chunks of $CHUNK)"
python3 - "$N" "$CHUNK" "$dir" <<'PY'
import sys
n, chunk, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
reasons = ["tcp_closed"] * 6 + ["keepalive_timeout"] * 5 + ["normal"] * 4 + ["takenover", "kicked", "discarded"]
t = 1717651184811
for c in range(0, n, chunk):
    with open(f"{d}/chunk-{c // chunk:05d}", "w") as f:
        for i in range(c, min(n, c + chunk)):
            f.write('{"event":"client.disconnected","clientid":"device-%08d","username":"fleet","peername":"10.%d.%d.%d:%d","sockname":"0.0.0.0:1883","proto_name":"MQTT","proto_ver":5,"reason":"%s","disconnected_at":%d,"disconn_props":{},"timestamp":%d,"node":"emqx@10.0.0.1"}\n'
                    % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255, 1024 + i % 60000, reasons[i % len(reasons)], t + i, t + i))
PY
pub_start=$(date +%s.%N)
for f in "$dir"/chunk-*; do
  mosquitto_pub -p "$port" -q 1 -t '$events/client_disconnected' -l < "$f"
done
pub_end=$(date +%s.%N)

echo "==> reference subscriber drains its backlog"
ref_start=$(date +%s.%N)
timeout $LIMIT mosquitto_sub -p "$port" -c -i load-reference -q 1 -t '$events/#' -C "$N" >/dev/null
ref_end=$(date +%s.%N)

echo "==> exporter drains its backlog"
exp_start=$(date +%s.%N)
start_exporter
drained() { [ "$(metric 'mqtt_exporter_events_received_total{kind="disconnected"}')" = "$N" ]; }
wait_for $LIMIT drained
exp_end=$(date +%s.%N)
read -r utime stime < <(awk '{ print $14, $15 }' /proc/$exporter/stat)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmHWM/ { print $2 }' /proc/$exporter/status)
errors=$(curl -s "127.0.0.1:$web/metrics" | awk '/^mqtt_exporter_event_errors_total/ { s += $2 } END { print s + 0 }')
counted=$(metric 'mqtt_exporter_events_received_total{kind="disconnected"}')

python3 - "$N" "$pub_start" "$pub_end" "$ref_start" "$ref_end" "$exp_start" "$exp_end" "$utime" "$stime" "$hz" "$rss" "$counted" "$errors" <<'PY'
import sys
n, ps, pe, rs, re_, es, ee, ut, st, hz, rss, counted, errors = sys.argv[1:]
n = int(n)
pub, ref, exp = float(pe) - float(ps), float(re_) - float(rs), float(ee) - float(es)
cpu = (int(ut) + int(st)) / int(hz)
print(f"events            {n}")
print(f"publish           {pub:.2f} s ({n / pub:,.0f} events/s)")
print(f"reference drain   {ref:.2f} s ({n / ref:,.0f} events/s)  mosquitto_sub > /dev/null")
print(f"exporter drain    {exp:.2f} s ({n / exp:,.0f} events/s)  including process start")
print(f"ratio             {exp / ref:.2f}  (exporter / reference; budget 1.25)")
print(f"exporter CPU      {cpu:.2f} s ({cpu * 1e6 / n:.2f} us/event)")
print(f"exporter peak RSS {int(rss) / 1024:.1f} MiB")
print(f"counted           {counted} (errors {errors})")
ok = int(counted) == n and int(errors) == 0 and exp / ref <= 1.25
print("RESULT            " + ("ok" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
