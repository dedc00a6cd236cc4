#!/usr/bin/env bash
# Builds the bootable appliance disk image (Debian 12, GPT, UEFI with
# systemd-boot and BIOS with syslinux) without loop devices or mounts:
# mmdebstrap builds the root tree (cached under target/image-cache/, keyed by
# the package list), then mke2fs -d and mtools write the partitions straight
# into the image file. Needs root for mmdebstrap's chroot and for a root tree
# with its real owners (see image/README.md).
#
#   bash image/build.sh [--binary PATH] [--out DIR]
#
# Writes DIR/appliance.img (default target/image/), its .sha256 and a package
# manifest, and prints the image's size and the build time.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
out=target/image
binary=
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: bash image/build.sh [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done

log() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap chroots into the tree, and the tree must keep its owners): run as root or with sudo"
for tool in mmdebstrap mke2fs mkfs.fat mcopy mmd sgdisk syslinux; do
    command -v "$tool" >/dev/null || die "$tool is missing: bash scripts/deps.sh installs the build tools"
done
gptmbr=/usr/lib/syslinux/mbr/gptmbr.bin
[ -r "$gptmbr" ] || die "$gptmbr is missing (syslinux-common)"

# Reproducibility: every time stamp is the commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
export SOURCE_DATE_EPOCH
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC

# Fixed identities so two builds of one commit agree (see image/README.md).
DISK_GUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a01
ESP_GUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a11
ROOT_A_GUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a12
ROOT_B_GUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a13
DATA_GUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a14
ROOT_FS_UUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a22
DATA_FS_UUID=6a9d2c1e-4c4b-4f53-9b7e-1d0a7e3c5a24
ESP_VOLID=4150504c

# Layout in MiB: 1 MiB for the GPT, ESP, two system slots (A/B upgrades), data (grown at first boot).
ESP_MIB=256
ROOT_MIB=2048
DATA_MIB=256
ESP_START=1
ROOT_A_START=$((ESP_START + ESP_MIB))
ROOT_B_START=$((ROOT_A_START + ROOT_MIB))
DATA_START=$((ROOT_B_START + ROOT_MIB))
DISK_MIB=$((DATA_START + DATA_MIB + 1))

# --- the release binary ------------------------------------------------------
if [ -z "$binary" ]; then
    log "building the release binary"
    cargo build --release --locked --bin appliance >&2
    binary=target/release/appliance
fi
[ -x "$binary" ] || die "no binary at $binary"

# --- the base tree: cached, keyed by everything that decides its content ----
mapfile -t packages < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' image/packages.txt | sort -u)
mmdebstrap_args=(
    --variant=minbase
    --components=main,contrib,non-free,non-free-firmware
    --aptopt='APT::Install-Recommends "false"'
    --dpkgopt=image/dpkg-excludes.cfg
    --include="$(IFS=,; echo "${packages[*]}")"
)
key=$( { printf '%s\n' "${mmdebstrap_args[@]}" bookworm "${APPLIANCE_IMAGE_MIRROR:-}"; cat image/dpkg-excludes.cfg; } | sha256sum | cut -c1-16)
cache=${APPLIANCE_IMAGE_CACHE:-target/image-cache}
base="$cache/base-$key.tar"
mkdir -p "$cache" "$out"
# One build at a time per output directory and cache (the test suite and a person may overlap).
exec 9>"$out/.build.lock"
flock -w 1800 9 || die "another image build holds $out/.build.lock"
exec 8>"$cache/.build.lock"
flock -w 1800 8 || die "another image build holds $cache/.build.lock"
if [ -f "$base" ] && [ -s "$base" ]; then
    log "base tree from the cache ($base)"
else
    log "building the base tree with mmdebstrap (${#packages[@]} packages and their dependencies)"
    # Older bases are stale now: keep only the one being built.
    rm -rf "$cache"/base-*.tar "$cache"/base-*.tar.partial
    mirror=()
    [ -n "${APPLIANCE_IMAGE_MIRROR:-}" ] && mirror=("$APPLIANCE_IMAGE_MIRROR")
    mmdebstrap --quiet --format=tar "${mmdebstrap_args[@]}" \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$base.partial" "${mirror[@]}" >&2
    mv "$base.partial" "$base"
fi

# --- the system tree -----------------------------------------------------------
work="$out/work"
rm -rf "$work"
mkdir -p "$work/root" "$work/data" "$work/esp"
root="$work/root"
tar -C "$root" --numeric-owner -xpf "$base"

install -D -m 0755 "$binary" "$root/usr/bin/appliance"
install -D -m 0644 -t "$root/usr/lib/systemd/system" systemd/appliance.service systemd/appliance-restart-backoff.service
install -D -m 0644 systemd/sysusers.d/appliance.conf "$root/usr/lib/sysusers.d/appliance.conf"
install -D -m 0644 systemd/tmpfiles.d/appliance.conf "$root/usr/lib/tmpfiles.d/appliance.conf"
cp -a image/rootfs/. "$root/"
chown -R 0:0 "$root/etc/fstab" "$root/etc/issue" "$root/usr/lib/appliance" "$root/usr/lib/systemd" "$root/usr/lib/tmpfiles.d"

# Every library the binary links must be in the image.
missing=$(chroot "$root" ldd /usr/bin/appliance | awk '/not found/ { print $1 }')
[ -z "$missing" ] || die "libraries missing from the image: $missing (add their packages to image/packages.txt)"

# Config and static network settings live on the data partition.
rm -rf "$root/etc/appliance" "$root/etc/systemd/network"
ln -s /var/lib/appliance/config "$root/etc/appliance"
ln -s /var/lib/appliance/config/network "$root/etc/systemd/network"
mkdir -p "$root/var/lib/appliance" "$root/efi"

# The initramfs grows the data partition at first boot (scripts/local-premount/appliance-grow-data).
chroot "$root" update-initramfs -u -k all >/dev/null 2>"$work/initramfs.log" || die "update-initramfs: $(cat "$work/initramfs.log")"
chroot "$root" systemd-sysusers >&2
chroot "$root" systemctl enable --quiet \
    appliance.service appliance-firstboot.service appliance-provision.service \
    systemd-networkd.service systemd-resolved.service systemd-timesyncd.service
# An appliance does not fetch package lists behind the operator's back.
chroot "$root" systemctl disable --quiet apt-daily.timer apt-daily-upgrade.timer
# The boot loader is replaced with the whole system on upgrades, never in place.
chroot "$root" systemctl mask --quiet systemd-boot-update.service
# No console login prompt is lost behind a password nobody knows yet: root stays
# locked until appliance-firstboot sets the admin password.
chroot "$root" usermod -p '*' root
echo appliance > "$root/etc/hostname"
# First boot: systemd generates the machine id (and runs ConditionFirstBoot= units).
echo uninitialized > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed" "$root/etc/ssh/ssh_host_"*
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
find "$root/var/log" -type f -delete
rm -rf "$root/var/cache/debconf/"*-old "$root/var/lib/dpkg/"*-old "$root/tmp/"* "$root/var/tmp/"*
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$out/appliance.packages"

kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n1)
version=${kernel#vmlinuz-}
cmdline="rw console=tty0 console=ttyS0,115200n8 loglevel=4"


# --- the EFI system partition (FAT, written with mtools) -------------------
esp="$work/esp.img"
mkfs.fat -F 32 -n ESP -i "$ESP_VOLID" --invariant -C "$esp" $((ESP_MIB * 1024)) >/dev/null
cat > "$work/esp/loader.conf" <<EOF
default appliance-a.conf
timeout 3
console-mode keep
editor no
EOF
for slot in a b; do
    cat > "$work/esp/appliance-$slot.conf" <<EOF
title   Appliance (system $slot)
version $version
linux   /appliance-$slot/vmlinuz
initrd  /appliance-$slot/initrd.img
options root=PARTLABEL=appliance-root-$slot $cmdline
EOF
done
cat > "$work/esp/syslinux.cfg" <<EOF
DEFAULT appliance-a
TIMEOUT 30
PROMPT 0
SERIAL 0 115200
LABEL appliance-a
  LINUX /appliance-a/vmlinuz
  INITRD /appliance-a/initrd.img
  APPEND root=PARTLABEL=appliance-root-a $cmdline
LABEL appliance-b
  LINUX /appliance-b/vmlinuz
  INITRD /appliance-b/initrd.img
  APPEND root=PARTLABEL=appliance-root-b $cmdline
EOF
touch --date="@$SOURCE_DATE_EPOCH" "$work/esp/"*
mtools() { MTOOLS_SKIP_CHECK=1 "$@"; }
mtools mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/appliance-a ::/appliance-b ::/syslinux
efi=$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi
mtools mcopy -m -i "$esp" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mtools mcopy -m -i "$esp" "$efi" ::/EFI/systemd/systemd-bootx64.efi
mtools mcopy -m -i "$esp" "$work/esp/loader.conf" ::/loader/loader.conf
mtools mcopy -m -i "$esp" "$work/esp/appliance-a.conf" ::/loader/entries/appliance-a.conf
mtools mcopy -m -i "$esp" "$root/boot/vmlinuz-$version" ::/appliance-a/vmlinuz
mtools mcopy -m -i "$esp" "$root/boot/initrd.img-$version" ::/appliance-a/initrd.img
mtools mcopy -m -i "$esp" "$work/esp/syslinux.cfg" ::/syslinux/syslinux.cfg
# The slot-b entry is written by appliance-upgrade when slot b gets a system.
cp "$work/esp/appliance-b.conf" "$root/usr/lib/appliance/loader-entry-b.conf"
syslinux --install --directory /syslinux "$esp"

# Time stamps newer than the commit become the commit's time.
find "$root" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

# --- the disk ----------------------------------------------------------------
disk="$out/appliance.img"
rm -f "$disk" "$disk.sha256"
truncate -s "${DISK_MIB}M" "$disk.partial"
sgdisk --clear --disk-guid="$DISK_GUID" \
    --new=1:${ESP_START}M:+${ESP_MIB}M --typecode=1:ef00 --change-name=1:esp --partition-guid=1:$ESP_GUID --attributes=1:set:2 \
    --new=2:${ROOT_A_START}M:+${ROOT_MIB}M --typecode=2:8304 --change-name=2:appliance-root-a --partition-guid=2:$ROOT_A_GUID \
    --new=3:${ROOT_B_START}M:+${ROOT_MIB}M --typecode=3:8304 --change-name=3:appliance-root-b --partition-guid=3:$ROOT_B_GUID \
    --new=4:${DATA_START}M:+${DATA_MIB}M --typecode=4:8300 --change-name=4:appliance-data --partition-guid=4:$DATA_GUID \
    "$disk.partial" >/dev/null
dd if="$gptmbr" of="$disk.partial" bs=440 count=1 conv=notrunc status=none
dd if="$esp" of="$disk.partial" bs=1M seek=$ESP_START conv=notrunc,sparse status=none

ext4() { # label uuid start_mib size_mib tree
    local offset=$(($3 * 1024 * 1024))
    mke2fs -q -t ext4 -L "$1" -U "$2" -E "hash_seed=$2,offset=$offset,root_owner=0:0" \
        -b 4096 -d "$5" "$disk.partial" "$(($4 * 256))"
    # mke2fs -d copies each file's ctime (the time of extraction) and atime (reading
    # it for the copy may have set it): make both the commit's time.
    find "$5" -printf '%P\n' | grep -v '[[:space:]"]' |
        sed "s|.*|sif \"/&\" ctime @$SOURCE_DATE_EPOCH\nsif \"/&\" atime @$SOURCE_DATE_EPOCH|" > "$work/ctimes"
    debugfs -w -f "$work/ctimes" "$disk.partial?offset=$offset" >/dev/null 2>"$work/ctimes.log" ||
        die "debugfs: $(tail -n3 "$work/ctimes.log")"
}
log "writing the system partition (mke2fs -d)"
ext4 appliance-root "$ROOT_FS_UUID" "$ROOT_A_START" "$ROOT_MIB" "$root"
# The data partition starts with the empty directories; tmpfiles and the first boot fill it.
mkdir -p "$work/data/state" "$work/data/media" "$work/data/config/network" "$work/data/identity"
chmod 0700 "$work/data/identity"
find "$work/data" -exec touch --date="@$SOURCE_DATE_EPOCH" {} +
ext4 appliance-data "$DATA_FS_UUID" "$DATA_START" "$DATA_MIB" "$work/data"
mv "$disk.partial" "$disk"
(cd "$out" && sha256sum appliance.img > appliance.img.sha256)

rm -rf "$work"
elapsed=$(($(date +%s) - started))
allocated=$(du -m "$disk" | cut -f1)
tree_mib=$(tar -tvf "$base" 2>/dev/null | awk '{ s += $3 } END { printf "%d", s / 1048576 }')
log "built $disk in ${elapsed}s: ${DISK_MIB} MiB disk, ${allocated} MiB allocated (sparse), base tree ${tree_mib} MiB, kernel $version"
log "sha256 $(cut -d' ' -f1 "$disk.sha256")"
