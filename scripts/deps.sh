#!/usr/bin/env bash
# Installs what building and testing the appliance needs on Debian 12, only
# what is missing. Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

APT_PACKAGES=(
  build-essential pkg-config clang libclang-dev
  libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libpostproc-dev
  ffmpeg fonts-dejavu-core ca-certificates curl
  python3 python3-venv
  chromium
  # the reference LL-HLS edge and its test (tests/tests/e2e/edge.rs), and the origin bench's reference
  nginx
  # systemd units check; the bootable image and its boot test in qemu
  systemd mmdebstrap e2fsprogs dosfstools mtools gdisk syslinux syslinux-common
  qemu-system-x86 ovmf fdisk
  # the metrics test (tests/tests/e2e/metrics.rs): promtool checks the scrape and the alert
  # rules, a real Prometheus server scrapes a live appliance (test tool only, not in the image)
  prometheus
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Node.js for the player test, unless the machine already has one.
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  # Debian 12's own rustc (1.63) is too old for this workspace (edition 2024).
  echo "installing the Rust toolchain with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# cargo-fuzz for the fuzz smoke run (fuzz/smoke.sh); the targets build on the
# stable compiler with RUSTC_BOOTSTRAP=1.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked >&2
fi

# The player test drives hls.js in Chromium through playwright-core (pinned by the lock file).
if [ ! -d tests/player/node_modules/playwright-core ]; then
  (cd tests/player && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
# The console test drives the operator's console the same way (its own lock file).
if [ ! -d tests/console/node_modules/playwright-core ]; then
  (cd tests/console && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# Python test tools (PyPI), pinned in tests/python-tools.txt, in a virtual
# environment under target/pytools: schemathesis fuzzes the REST API (the e2e
# test api::schemathesis); imageio-ffmpeg brings a static FFmpeg 9 build,
# linked as target/tools/ffmpeg9: the real publisher for what Debian 12's
# FFmpeg 5.1 cannot send (Enhanced RTMP HEVC, tests/tests/e2e/enhanced_rtmp.rs).
# Test tools only: the image ships Debian's FFmpeg.
if ! cmp -s tests/python-tools.txt target/pytools/installed.txt; then
  echo "installing the Python test tools into target/pytools" >&2
  rm -rf target/pytools
  if python3 -m venv target/pytools >&2 &&
    target/pytools/bin/pip install --quiet --disable-pip-version-check -r tests/python-tools.txt >&2; then
    cp tests/python-tools.txt target/pytools/installed.txt
  else
    echo "WARNING: the Python test tools could not be installed; tests that need them will be skipped" >&2
    rm -rf target/pytools
  fi
fi
if [ -d target/pytools ]; then
  mkdir -p target/tools
  ffmpeg9=$(find target/pytools -path '*imageio_ffmpeg/binaries/ffmpeg-linux*' -type f | head -n 1)
  if [ -n "$ffmpeg9" ]; then
    chmod +x "$ffmpeg9"
    ln -sfn "$(realpath "$ffmpeg9")" target/tools/ffmpeg9
  fi
fi
