#!/usr/bin/env bash
# Prints the figures of the last `cargo bench --bench pipeline` run with each
# per-event stage as a ratio to the same run's baseline (serde_json parsing
# the same payload into a borrowed struct), so figures compare across
# machines; and the storm drain as a ratio to the quiet drain.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/criterion
[ -d "$dir" ] || { echo "no criterion results: run cargo bench --bench pipeline first" >&2; exit 1; }
python3 - "$dir" <<'PY'
import json, os, sys
d = sys.argv[1]
def mean(group, name):
    p = os.path.join(d, group, name, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["mean"]["point_estimate"]
base = mean("per_event", "baseline_serde_json_borrowed")
print("| stage | ns per event | ratio to serde_json baseline |")
print("|---|---|---|")
for name in ["baseline_serde_json_borrowed", "parse", "classify",
             "flapping_update_1M_clients", "pipeline_handle_1M_clients"]:
    ns = mean("per_event", name)
    if ns is not None:
        print(f"| {name} | {ns:.0f} | {ns / base:.2f} |" if base else f"| {name} | {ns:.0f} | - |")
print()
print("| tick with N clients flapping | µs per tick | ratio to baseline event |")
print("|---|---|---|")
for n in ["0_flapping", "10000_flapping", "200000_flapping"]:
    ns = mean("tick", n)
    if ns is not None:
        print(f"| {n} | {ns / 1000:.1f} | {ns / base:.0f} |" if base else f"| {n} | {ns / 1000:.1f} | - |")
quiet = mean("drain_100k", "quiet")
storm = mean("drain_100k", "storm_100k_flapping")
if quiet and storm:
    print()
    print(f"drain of 100k events: quiet {quiet / 1e6:.1f} ms, with 100k flapping {storm / 1e6:.1f} ms, ratio {storm / quiet:.2f} (budget 1.25)")
PY
