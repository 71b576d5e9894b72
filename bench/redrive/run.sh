#!/usr/bin/env bash
# Redrive benchmark: `gatekeeper redrive` against `aws s3 mv --recursive` on the same data,
# in the same run, against one local moto server. Not part of the test suite.
#
#   bench/redrive/run.sh [objects=10000] [object-bytes=1024] [concurrency=16]
#
# 1. installs awscli (pinned in bench/redrive/requirements.txt) into target/bench-redrive-venv
#    and moto from scripts/requirements-test.txt into .venv (as scripts/test does), once;
# 2. builds gatekeeper in release mode;
# 3. starts moto_server on a free port; seeds two parking-lot buckets with the same N objects
#    (`aws s3 cp --recursive`, not timed); half the keys sit under batch prefixes;
# 4. times `gatekeeper redrive` (copy, verify, delete) from the first and `aws s3 mv
#    --recursive` from the second, counts the requests each sent (moto's request log),
#    checks both moved every object, and prints a table.
set -euo pipefail

n="${1:-10000}"
bytes="${2:-1024}"
concurrency="${3:-16}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/.venv"
bench_venv="$root/target/bench-redrive-venv"

if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
if [ ! -x "$bench_venv/bin/aws" ]; then
  python3 -m venv "$bench_venv"
  "$bench_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/redrive/requirements.txt
fi
aws="$bench_venv/bin/aws"

# GATEKEEPER_BENCH_BIN: time this gatekeeper binary (another build) instead of building one.
if [ -n "${GATEKEEPER_BENCH_BIN:-}" ]; then
  gatekeeper="$GATEKEEPER_BENCH_BIN"
else
  cargo build --release -q -p gatekeeper
  gatekeeper="$target/release/gatekeeper"
fi

work="$(mktemp -d)"
port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
cleanup() {
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
s3() { "$aws" --endpoint-url "$endpoint" s3 "$@"; }
count() {
  "$aws" --endpoint-url "$endpoint" s3 ls --recursive "s3://$1/" | wc -l | tr -d ' '
}

echo "seeding 2 x $n objects of $bytes bytes..." >&2
"$venv/bin/python" - "$work/data" "$n" "$bytes" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    # Half plain uploads, half unpacked batches of 100 files.
    rel = f"uploads/{i:06d}.jpg" if i % 2 == 0 else f"batch-{i // 200:04d}/img/{i:06d}.jpg"
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
PY
for b in gk-parking gk-ingestion aws-parking aws-ingestion; do
  s3 mb "s3://$b" >/dev/null
done
s3 cp --recursive --quiet "$work/data" s3://gk-parking/
s3 cp --recursive --quiet "$work/data" s3://aws-parking/
[ "$(count gk-parking)" = "$n" ] && [ "$(count aws-parking)" = "$n" ] || { echo "seeding failed" >&2; exit 1; }

cat >"$work/gatekeeper.toml" <<TOML
service = "bench"
environment = "prod"
[maintenance]
parking_lot_bucket = "gk-parking"
ingestion_bucket = "gk-ingestion"
[maintenance.batches]
id_prefix = "batch-"
liveness = "none"
TOML

now() { date +%s.%N; }
# moto logs one line per request: the lines each tool adds are the requests it sent.
logged() { wc -l <"$work/moto.log" | tr -d ' '; }
echo "gatekeeper redrive (concurrency $concurrency)..." >&2
l0=$(logged)
t0=$(now)
"$gatekeeper" redrive --config "$work/gatekeeper.toml" --concurrency "$concurrency" --output json >"$work/report.json"
t1=$(now)
l1=$(logged)
echo "aws s3 mv --recursive (default 10 concurrent requests)..." >&2
s3 mv --recursive --quiet s3://aws-parking/ s3://aws-ingestion/
t2=$(now)
l2=$(logged)

gk_left=$(count gk-parking); gk_moved=$(count gk-ingestion)
aws_left=$(count aws-parking); aws_moved=$(count aws-ingestion)
"$venv/bin/python" - "$n" "$bytes" "$concurrency" "$t0" "$t1" "$t2" "$gk_moved" "$gk_left" "$aws_moved" "$aws_left" "$work/moto.log" "$l0" "$l1" "$l2" <<'PY'
import collections, re, sys
n, size, conc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2 = map(float, sys.argv[4:7])
gk_moved, gk_left, aws_moved, aws_left = map(int, sys.argv[7:11])
log, l0, l1, l2 = sys.argv[11], int(sys.argv[12]), int(sys.argv[13]), int(sys.argv[14])
gk, aws = t1 - t0, t2 - t1
lines = open(log, errors="replace").read().splitlines()

def requests(part):
    # GET ?list-type=2 lists; PUT with x-amz-copy-source copies; POST ?delete deletes in batches.
    kinds = collections.Counter()
    for line in part:
        m = re.search(r'"([A-Z]+) (\S+) HTTP', line)
        if not m:
            continue
        method, path = m.groups()
        kind = {"GET": "GetObject", "PUT": "CopyObject", "HEAD": "HeadObject",
                "DELETE": "DeleteObject", "POST": "POST"}.get(method, method)
        if method == "GET" and "list-type=2" in path:
            kind = "ListObjectsV2"
        elif method == "POST" and "delete" in path:
            kind = "DeleteObjects"
        kinds[kind] += 1
    return kinds

gk_req, aws_req = requests(lines[l0:l1]), requests(lines[l1:l2])
print(f"redrive of {n} objects x {size} B against moto (same run, same data)")
print(f"{'tool':<34} {'seconds':>8} {'objects/s':>10} {'requests/obj':>13} {'moved':>7} {'left':>6}")
for name, secs, req, moved, left in [
    (f"gatekeeper redrive (c={conc})", gk, gk_req, gk_moved, gk_left),
    ("aws s3 mv --recursive", aws, aws_req, aws_moved, aws_left),
]:
    print(f"{name:<34} {secs:>8.1f} {n / secs:>10.1f} {sum(req.values()) / n:>13.3f} {moved:>7} {left:>6}")
for name, req in [("gatekeeper", gk_req), ("aws", aws_req)]:
    print(f"  {name} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(req.items())))
print(f"gatekeeper / aws throughput: {aws / gk:.2f}x")
ok = gk_moved == n and gk_left == 0 and aws_moved == n and aws_left == 0
sys.exit(0 if ok else 1)
PY
