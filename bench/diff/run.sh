#!/usr/bin/env bash
# Whole-process time of `gatekeeper diff` against @aws-cdk/cloudformation-diff (what `cdk diff`
# uses) on the same 500-resource template pair, in one run. Prints both medians and the ratio.
# First, scale.sh: wall time and peak memory on a 10,000-resource pair, JSON and YAML (no node).
#
#   bench/diff/run.sh [resources] [runs]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
resources="${1:-500}"
runs="${2:-20}"
. "$here/../lib.sh"
GATEKEEPER="$(release_gatekeeper)"
export GATEKEEPER
"$here/scale.sh" 10000 5
if [ ! -d "$here/node_modules/@aws-cdk/cloudformation-diff" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --silent)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 "$here/gen.py" "$work" "$resources"
python3 - "$GATEKEEPER" "$here/cdk-diff.js" "$work" "$runs" <<'PY'
import statistics, subprocess, sys, time
gk, js, work, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
old, new = f"{work}/old.json", f"{work}/new.json"
def timed(cmd, n):
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - t)
        if p.returncode not in (0, 2):
            sys.exit(f"{cmd[0]} failed: {p.stderr.decode()}")
    return statistics.median(samples), min(samples)
# The same new template laid out otherwise: no resource's text is the same on both sides, so
# gatekeeper parses every resource (its worst case; the report is the same).
import json
respelled = f"{work}/new-reindented.json"
with open(new) as f, open(respelled, "w") as out:
    json.dump(json.load(f), out, indent=3)
gk_med, gk_min = timed([gk, "diff", old, new], runs * 5)
gk_all_med, gk_all_min = timed([gk, "diff", old, respelled], runs * 5)
js_med, js_min = timed(["node", js, old, new], runs)
print(f"| tool | runs | median ms | min ms |")
print(f"|---|---|---|---|")
print(f"| gatekeeper diff | {runs * 5} | {gk_med * 1e3:.2f} | {gk_min * 1e3:.2f} |")
print(f"| gatekeeper diff, new template re-indented | {runs * 5} | {gk_all_med * 1e3:.2f} | {gk_all_min * 1e3:.2f} |")
print(f"| @aws-cdk/cloudformation-diff (node) | {runs} | {js_med * 1e3:.1f} | {js_min * 1e3:.1f} |")
print(f"ratio (median): {js_med / gk_med:.0f}x faster; goal >= 100x and < 10 ms: "
      f"{'met' if js_med / gk_med >= 100 and gk_med < 0.010 else 'NOT met'}")
print(f"re-indented (every resource parsed): {js_med / gk_all_med:.0f}x")
PY
