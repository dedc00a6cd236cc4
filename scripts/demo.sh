#!/usr/bin/env bash
# Builds and runs the appliance with its embedded defaults and a demo channel:
# a test pattern with a clock and a tone, published over real RTMP on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cargo build --release --locked --bin appliance
exec target/release/appliance serve --demo "$@"
