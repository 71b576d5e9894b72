#!/usr/bin/env bash
# Peak memory and wall time of `gatekeeper judge` on a large JSONL input, for both methods: the
# judge reads a line at a time, whatever the input's size.
#
#   bench/judge/memory.sh [megabytes=1024]
#
# The input is an A/A stream (canary and baseline alike) judged with pass_early = false, so
# both methods read it to its last line. GATEKEEPER=path uses that binary instead of building
# the release one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
megabytes="${1:-1024}"
. "$here/../lib.sh"
gk="$(release_gatekeeper)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$gk" "$work" "$megabytes" <<'PY'
import json, os, random, subprocess, sys, time
gk, work, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = os.path.join(work, "aa.jsonl")
rng = random.Random(7)
# One interval: 1,000 baseline latency samples and 50 canary ones, both from one lognormal.
with open(data, "w") as out:
    t, written = 0, 0
    while written < megabytes * 1_000_000:
        t += 60
        for group, requests, samples in (("baseline", 19_000, 1000), ("canary", 1_000, 50)):
            mean = requests * 0.005
            errors = max(0, round(rng.gauss(mean, mean ** 0.5)))
            line = json.dumps({
                "t": t, "group": group, "requests": requests, "errors": errors,
                "latency_ms": [round(rng.lognormvariate(4.6, 0.5), 1) for _ in range(samples)],
            }) + "\n"
            out.write(line)
            written += len(line)
size = os.path.getsize(data) / 1e6
config = os.path.join(work, "judge.toml")
with open(config, "w") as f:
    f.write("[canary.judge]\npass_early = false\n")
print(f"| {size:,.0f} MB of JSONL ({t // 60:,} intervals) | verdict | wall s | CPU s | max RSS MB |")
print("|---|---|---:|---:|---:|")
for method in ("sequential", "mann-whitney"):
    cmd = [gk, "judge", "--input", data, "--config", config, "--method", method, "--output", "json"]
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.stdout.read(), p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):
        sys.exit(f"{' '.join(cmd)} exited {code}: {err.decode()}")
    verdict = json.loads(out)["verdict"]
    cpu = usage.ru_utime + usage.ru_stime
    print(f"| {method} | {verdict} | {wall:.1f} | {cpu:.1f} | {usage.ru_maxrss / 1024:.1f} |")
PY
