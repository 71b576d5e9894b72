#!/usr/bin/env bash
# Gate overhead benchmark: full canary cycles against a local moto with drain and bake at zero.
#
#   bench/canary/run.sh [runs=5]
#
# Builds gatekeeper in release mode, starts moto on a free loopback port (moto from .venv, as
# scripts/test installs it), and runs the harness tests/benches/canary_overhead.rs (built in the
# test profile: it only starts processes and reads clocks; the binary measured is the release
# one), which prints a table: wall time of `gatekeeper canary run --auto-promote` and the AWS
# requests it sent (GATEKEEPER_AWS_CALLS), for fleets of 3 and 9 nodes; then the same for a
# three-stage pipeline (tests/benches/pipeline_overhead.rs: stack on staging, canary, promote).
set -euo pipefail

runs="${1:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/.venv"
if [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    -r scripts/requirements-test.txt
fi

cargo build --release -q -p gatekeeper

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null && break
  sleep 0.2
done

export GATEKEEPER_TEST_MOTO="$endpoint" AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_MAX_ATTEMPTS=2 AWS_EC2_METADATA_DISABLED=true
export GATEKEEPER_BIN="$target/release/gatekeeper" RUNS="$runs"
unset AWS_PROFILE AWS_SESSION_TOKEN
cargo test -q -p gatekeeper-e2e --bench canary_overhead
cargo test -q -p gatekeeper-e2e --bench pipeline_overhead
