#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the fuzz target's build, unit,
# property and integration tests (the ignored ones too) against a real Mosquitto (and, for the alerting tests, a real
# Prometheus and Alertmanager; the dashboards against Grafana's types with
# tsc). On a fresh Debian machine it first installs what the tests use from
# Debian's packages and the npm registry; it fails loudly if anything is
# still missing afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

need=()
have mosquitto || need+=(mosquitto)
have mosquitto_pub || need+=(mosquitto-clients)
have promtool || need+=(prometheus)
have prometheus || need+=(prometheus)
have prometheus-alertmanager || need+=(prometheus-alertmanager)
have amtool || need+=(prometheus-alertmanager)
have openssl || need+=(openssl)
have node || need+=(nodejs)
have npm || need+=(npm)
have curl || need+=(curl)
have systemd-analyze || need+=(systemd)
have podman || need+=(podman)
if [ "${#need[@]}" -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "==> installing test dependencies: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi
for bin in mosquitto mosquitto_passwd mosquitto_pub mosquitto_sub promtool prometheus prometheus-alertmanager amtool openssl node npm curl systemd-analyze podman; do
  if ! have "$bin"; then
    echo "error: $bin is still missing after installing packages" >&2
    exit 1
  fi
done

# kubernetes-validate (with jsonschema and PyYAML) checks the manifests
if ! python3 -c "import kubernetes_validate, jsonschema, yaml" 2>/dev/null; then
  echo "==> pip install kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi

# Grafana's dashboard types and tsc, at the versions the lockfile pins
if [ ! -d dashboards/typecheck/node_modules/@grafana/schema ]; then
  echo "==> npm ci (dashboards/typecheck: @grafana/schema, typescript)"
  (cd dashboards/typecheck && npm ci --no-audit --no-fund)
fi

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
echo "==> cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
echo "==> cargo build of the fuzz target (fuzz/, its own workspace)"
cargo build --quiet --manifest-path fuzz/Cargo.toml

# Tests that need a tool installed above are #[ignore]d, so a plain
# `cargo test` passes on a machine without them; here every one runs.
echo "==> cargo test -- --include-ignored"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test -- --include-ignored 2>&1 | tee "$log" || status=$?
# One closing line for the whole run (cargo prints one per test binary,
# and the last is the doc tests').
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
