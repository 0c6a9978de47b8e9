# Sourced by scripts/load.sh and scripts/storm.sh: the release exporter, a
# local Mosquitto with unbounded queues (so the broker drops nothing) on a
# free 127.0.0.1 port, and the helpers both measurements use. Everything is
# cleaned up on exit.
#
#   INFLIGHT=1000 . scripts/bench-env.sh     (Mosquitto's max_inflight_messages)
#   EXE=/path/to/other/build scripts/load.sh (measure another build)

mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
for bin in "$mosq" mosquitto_pub mosquitto_sub curl python3; do
  command -v "$bin" >/dev/null || { echo "missing $bin (scripts/test.sh installs the test stack)" >&2; exit 1; }
done
# EXE=path measures another build (an older commit's, for an A/B on one machine)
if [ -z "${EXE:-}" ]; then
  cargo build --release -q
fi
exe=${EXE:-target/release/mqtt-disconnect-exporter}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
port=$(free_port)
web=$(free_port)
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages ${INFLIGHT:-1000}
CONF
"$mosq" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
broker=$!
exporter=""
cleanup() { kill $broker ${exporter:-} 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
sleep 0.5

# metric NAME: the value of one series on the exporter's /metrics
metric() { curl -s "127.0.0.1:$web/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# wait_for SECONDS COMMAND...: polls COMMAND until it succeeds, or fails the run
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; exit 1; }
    sleep 0.05
  done
}
ready() { curl -sf "127.0.0.1:$web/-/ready" >/dev/null; }
