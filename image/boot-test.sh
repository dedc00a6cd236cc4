#!/usr/bin/env bash
# The image boot test in one command: builds the disk image (the release
# binary, the cached base tree), boots it in qemu-system-x86_64 with software
# emulation and runs tests/tests/image_boot.rs against it over forwarded ports.
# Says "skipped: <reason>" and exits 0 where it cannot run (no root, no qemu,
# no UEFI firmware, or APPLIANCE_SKIP_BOOT_TEST=1).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "image boot test skipped: $*" >&2
    exit 0
}
[ "${APPLIANCE_SKIP_BOOT_TEST:-0}" = 1 ] && skip "APPLIANCE_SKIP_BOOT_TEST=1"
[ "$(id -u)" -eq 0 ] || skip "building the image needs root (mmdebstrap chroots; the tree keeps its owners)"
for tool in qemu-system-x86_64 qemu-img mmdebstrap mke2fs mkfs.fat mcopy sgdisk syslinux ffmpeg; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (bash scripts/deps.sh installs it)"
done
[ -r /usr/share/OVMF/OVMF_CODE_4M.fd ] || [ -r /usr/share/OVMF/OVMF_CODE.fd ] || skip "no UEFI firmware for qemu (package ovmf)"

bash image/build.sh --out target/image
APPLIANCE_TEST_IMAGE="$PWD/target/image/appliance.img" \
    cargo test --locked -p tests --test image_boot -- --nocapture
