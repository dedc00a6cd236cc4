#!/usr/bin/env bash
# The fuzz smoke run of the test suite: builds every cargo-fuzz target
# (AddressSanitizer, debug assertions) and runs each for a few seconds from
# its committed seeds. A crash fails the run and leaves its input under
# fuzz/artifacts/<target>/. Long runs: see fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SMOKE_SECONDS:-4}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "fuzz smoke: cargo-fuzz is missing (scripts/deps.sh installs it)" >&2
    exit 1
  fi
  echo "skipped: fuzz smoke (cargo-fuzz not installed; cargo install cargo-fuzz --locked)"
  exit 0
fi
# cargo-fuzz passes -Z flags (sanitizer, coverage); the stable compiler takes them this way.
export RUSTC_BOOTSTRAP=1
cargo fetch --locked --quiet
# Debug-profile targets build in about half the time of release ones; a smoke run needs no speed.
cargo fuzz build --dev
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
passed=0
failed=0
for target in $(cargo fuzz list); do
  mkdir -p "$corpus/$target"
  if cargo fuzz run --dev "$target" "$corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$corpus/$target.log" 2>&1; then
    runs="$(grep -m1 'stat::number_of_executed_units' "$corpus/$target.log" | awk '{print $2}')"
    echo "fuzz smoke: $target ok (${runs:-?} runs in ${seconds}s)"
    passed=$((passed + 1))
  else
    echo "fuzz smoke: $target FAILED" >&2
    tail -n 40 "$corpus/$target.log" >&2
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
