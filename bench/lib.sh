# Sourced by the benchmark scripts. `bench_root` is the repository; `release_gatekeeper` prints
# the binary to time: $GATEKEEPER when set (another build), else the release build, built now.
bench_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

release_gatekeeper() {
  if [ -n "${GATEKEEPER:-}" ]; then
    echo "$GATEKEEPER"
    return
  fi
  (cd "$bench_root" && cargo build --release -q -p gatekeeper)
  echo "${CARGO_TARGET_DIR:-$bench_root/target}/release/gatekeeper"
}
