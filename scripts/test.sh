#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the CMAF/ffprobe checks, and the
# end-to-end tests with the real ffmpeg publisher and HTTP client.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast "$@"
# The bootable image, booted in qemu (skips loudly where it cannot run).
bash image/boot-test.sh
