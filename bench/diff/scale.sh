#!/usr/bin/env bash
# Whole-process wall time, CPU time (user + system) and peak memory of `gatekeeper diff` on a
# large template pair, JSON and the same pair as YAML (short `!Ref`/`!GetAtt` tags): medians
# (p50) over the runs, the largest max RSS. No node needed.
#
#   bench/diff/scale.sh [resources=10000] [runs=5]
#
# GATEKEEPER=path uses that binary instead of building the release one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
resources="${1:-10000}"
runs="${2:-5}"
. "$here/../lib.sh"
gk="$(release_gatekeeper)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 "$here/gen.py" "$work" "$resources" --yaml >/dev/null
python3 - "$gk" "$work" "$runs" "$resources" <<'PY'
import os, statistics, subprocess, sys, time
gk, work, runs, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def run(cmd):
    """Wall seconds, CPU seconds (user + system) and peak resident memory (MB) of one process.
    CPU time is what a busy machine changes least."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        sys.exit(f"{' '.join(cmd)} exited {code}: {p.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
rows = {}
for fmt in ("json", "yaml"):
    samples = [run([gk, "diff", f"{work}/old.{fmt}", f"{work}/new.{fmt}"]) for _ in range(runs)]
    walls = [w for w, _, _ in samples]
    cpu = statistics.median(c for _, c, _ in samples)
    rows[fmt] = (statistics.median(walls), min(walls), cpu, max(r for _, _, r in samples))
size = lambda f: os.path.getsize(f"{work}/{f}") / 1e6
print(f"| {n} resources, ~10% modified | runs | wall p50 ms | wall min ms | CPU p50 ms | max RSS MB | bytes per side |")
print("|---|---:|---:|---:|---:|---:|---:|")
for fmt, (med, lo, cpu, rss) in rows.items():
    print(f"| {fmt.upper()} | {runs} | {med * 1e3:.0f} | {lo * 1e3:.0f} | {cpu * 1e3:.0f} | {rss:.1f} | {size('old.' + fmt):.1f} MB |")
# Judged on CPU time, which waiting for a core on a busy machine does not inflate. YAML is
# read on two threads, so its CPU time is more than its wall time; both ratios are printed.
json_cpu, yaml_cpu = rows["json"][2], rows["yaml"][2]
wall_ratio = rows["yaml"][0] / rows["json"][0]
ok = yaml_cpu <= 2 * json_cpu and max(json_cpu, yaml_cpu) < 0.100 and max(r[3] for r in rows.values()) < 30
print(f"YAML / JSON: {yaml_cpu / json_cpu:.1f}x CPU p50, {wall_ratio:.1f}x wall p50; goal YAML <= 2x JSON, "
      f"both < 100 ms and < 30 MB (on CPU time): {'met' if ok else 'NOT met'}")
PY
