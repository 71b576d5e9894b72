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
#    (`aws s3 cp --recursive`, not timed); half the keys sit under batch-NNNN/ prefixes, and
#    the queue of every even-numbered batch is created (alive), the odd ones are not (dead);
# 4. times `gatekeeper redrive` (copy, verify, delete) from the first and `aws s3 mv
#    --recursive` from the second, counts the requests each sent (moto's request log),
#    checks both moved every object, and prints a table.
#
# Both tools run with the same concurrency: gatekeeper with --concurrency, awscli with
# s3.max_concurrent_requests in a config file the script writes (AWS_CONFIG_FILE; ~/.aws is
# never read or written). gatekeeper runs with batch rules (id_prefix "batch-", liveness by
# queue), so its GetQueueUrl per batch and the rewriting of dead batches' keys are measured;
# GATEKEEPER_BENCH_LIVENESS=none times it without batch checks instead (every key kept).
set -euo pipefail

n="${1:-10000}"
bytes="${2:-1024}"
concurrency="${3:-16}"
liveness="${GATEKEEPER_BENCH_LIVENESS:-queue}"
case "$liveness" in
  queue | none) ;;
  *) echo "GATEKEEPER_BENCH_LIVENESS must be queue or none, not $liveness" >&2; exit 1 ;;
esac
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
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE
# awscli's own concurrency: the same number of requests in flight as gatekeeper's.
cat >"$work/aws-config" <<INI
[default]
region = us-east-1
s3 =
  max_concurrent_requests = $concurrency
INI
export AWS_CONFIG_FILE="$work/aws-config"
aws_concurrency="$("$aws" configure get default.s3.max_concurrent_requests)"
[ "$aws_concurrency" = "$concurrency" ] || {
  echo "awscli reads s3.max_concurrent_requests = '$aws_concurrency', not $concurrency" >&2
  exit 1
}
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
# Batch liveness: batch-NNNN is alive while queue bench-prod-batch-NNNN exists. Even batches
# get their queue, odd ones do not: gatekeeper rewrites their objects to img/<file> (dead).
"$venv/bin/python" - "$endpoint" "$n" <<'PY'
import sys, boto3
endpoint, n = sys.argv[1], int(sys.argv[2])
sqs = boto3.client("sqs", endpoint_url=endpoint)
batches = sorted({i // 200 for i in range(n) if i % 2 == 1})
for b in batches:
    if b % 2 == 0:
        sqs.create_queue(QueueName=f"bench-prod-batch-{b:04d}")
PY

cat >"$work/gatekeeper.toml" <<TOML
service = "bench"
environment = "prod"
[maintenance]
parking_lot_bucket = "gk-parking"
ingestion_bucket = "gk-ingestion"
[maintenance.batches]
id_prefix = "batch-"
liveness = "$liveness"
queue = "{prefix}-{batch}"
rewrite = "{path}"
TOML

now() { date +%s.%N; }
# moto logs one line per request: the lines each tool adds are the requests it sent.
logged() { wc -l <"$work/moto.log" | tr -d ' '; }
echo "gatekeeper redrive (concurrency $concurrency, batch liveness $liveness)..." >&2
l0=$(logged)
t0=$(now)
"$gatekeeper" redrive --config "$work/gatekeeper.toml" --concurrency "$concurrency" --output json >"$work/report.json"
t1=$(now)
l1=$(logged)
echo "aws s3 mv --recursive (max_concurrent_requests $aws_concurrency)..." >&2
s3 mv --recursive --quiet s3://aws-parking/ s3://aws-ingestion/
t2=$(now)
l2=$(logged)

gk_left=$(count gk-parking); gk_moved=$(count gk-ingestion)
aws_left=$(count aws-parking); aws_moved=$(count aws-ingestion)
"$venv/bin/python" - "$n" "$bytes" "$concurrency" "$t0" "$t1" "$t2" "$gk_moved" "$gk_left" "$aws_moved" "$aws_left" "$work/moto.log" "$l0" "$l1" "$l2" "$aws_concurrency" "$liveness" "$work/report.json" <<'PY'
import collections, json, re, sys
n, size, conc = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2 = map(float, sys.argv[4:7])
gk_moved, gk_left, aws_moved, aws_left = map(int, sys.argv[7:11])
log, l0, l1, l2 = sys.argv[11], int(sys.argv[12]), int(sys.argv[13]), int(sys.argv[14])
aws_conc, liveness, report = int(sys.argv[15]), sys.argv[16], json.load(open(sys.argv[17]))
gk, aws = t1 - t0, t2 - t1
lines = open(log, errors="replace").read().splitlines()

def requests(part):
    # GET ?list-type=2 lists; PUT with x-amz-copy-source copies; POST ?delete deletes in batches;
    # S3 is addressed by path (/bucket/key), so a POST to / is SQS (GetQueueUrl, the liveness check).
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
        elif method == "POST" and path in ("/", "/?"):
            kind = "SQS GetQueueUrl"
        kinds[kind] += 1
    return kinds

# What the seeding expects: odd i under batch-(i // 200), odd-numbered batches dead.
batch_ids = sorted({i // 200 for i in range(n) if i % 2 == 1})
dead = [b for b in batch_ids if b % 2 == 1] if liveness == "queue" else []
dead_objects = sum(1 for i in range(n) if i % 2 == 1 and (i // 200) in dead)

gk_req, aws_req = requests(lines[l0:l1]), requests(lines[l1:l2])
print(f"redrive of {n} objects x {size} B against moto (same run, same data)")
print(f"{'tool':<36} {'concurrency':>11} {'seconds':>8} {'objects/s':>10} {'requests/obj':>13} {'moved':>7} {'left':>6}")
for name, c, secs, req, moved, left in [
    (f"gatekeeper redrive (liveness {liveness})", conc, gk, gk_req, gk_moved, gk_left),
    ("aws s3 mv --recursive", aws_conc, aws, aws_req, aws_moved, aws_left),
]:
    print(f"{name:<36} {c:>11} {secs:>8.1f} {n / secs:>10.1f} {sum(req.values()) / n:>13.3f} {moved:>7} {left:>6}")
for name, req in [("gatekeeper", gk_req), ("aws", aws_req)]:
    print(f"  {name} requests: " + ", ".join(f"{k} {v}" for k, v in sorted(req.items())))
print(f"  gatekeeper batches: {len(batch_ids) if liveness == 'queue' else 0} checked, "
      f"{len(report['dead_batches'])} dead, {report['rewritten']} objects rewritten "
      f"(expected {len(dead)} dead, {dead_objects} rewritten); "
      f"{report['conflicts']} conflicts, {report['failures']} failures")
print(f"gatekeeper / aws throughput: {aws / gk:.2f}x")
ok = (gk_moved == n and gk_left == 0 and aws_moved == n and aws_left == 0
      and len(report["dead_batches"]) == len(dead) and report["rewritten"] == dead_objects
      and report["conflicts"] == 0 and report["failures"] == 0)
sys.exit(0 if ok else 1)
PY
