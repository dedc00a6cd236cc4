#!/usr/bin/env bash
# Runs the whole test suite: unit tests, each crate's tests of its own API
# (ingest, packager, accel), the end-to-end tests (one binary, tests/tests/e2e:
# the real ffmpeg publisher, HTTP clients, ffprobe, Chromium) and the appliance
# binary's own tests (appliance/tests/binary). A test whose tool is missing
# skips loudly, and fails where CI=true. The long player runs are commands,
# not part of it: `cargo run -p tests --bin players -- soak|latency-modes`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --locked --workspace --all-targets
# One test at a time in each binary: the e2e binary holds tests that play in
# Chromium next to tests that transcode ladders, and on 2 cores two of them at
# once starve the players (stalls, seconds of latency) without any fault.
RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}" cargo test --locked --workspace --no-fail-fast "$@"
# Every cargo-fuzz target built with AddressSanitizer and run a few seconds from its seeds.
bash fuzz/smoke.sh
# The bootable image, booted in qemu (skips loudly where it cannot run). It boots
# the debug build compiled above, which saves a release build (6-7 min on 2 cores);
# `bash image/boot-test.sh` alone tests the release binary.
APPLIANCE_BOOT_TEST_BINARY="${APPLIANCE_BOOT_TEST_BINARY:-debug}" bash image/boot-test.sh
