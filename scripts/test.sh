#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the CMAF/ffprobe checks, and the
# end-to-end tests with the real ffmpeg publisher and HTTP client.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast "$@"
# Every cargo-fuzz target built with AddressSanitizer and run a few seconds from its seeds.
bash fuzz/smoke.sh
# The bootable image, booted in qemu (skips loudly where it cannot run). It boots
# the debug build compiled above, which saves a release build (6-7 min on 2 cores);
# `bash image/boot-test.sh` alone tests the release binary.
APPLIANCE_BOOT_TEST_BINARY="${APPLIANCE_BOOT_TEST_BINARY:-debug}" bash image/boot-test.sh
