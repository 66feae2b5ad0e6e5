#!/usr/bin/env bash
# Builds the test guests into .cache/guests (idempotent; rebuilt only when a source changes):
#   hello.elf        the multiboot hello kernel (test/guests/hello)
#   vmlinux          Debian's kernel, uncompressed (linux-image-6.1 package, unpacked, not installed)
#   initramfs.gz     busybox + the 9p/virtio-fs/virtio-blk/virtio-net/ext4/overlay/ACPI-button modules + test/guests/linux
#                    scripts + /urunit (test/guests/urunit, a stand-in following urunit's contract)
#   fake-monitor     a stand-in for monitors not packaged here (test/guests/fake-monitor)
#   pause            a static pause program for the test pods' sandbox image (test/guests/pause)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$repo/.cache/guests
mkdir -p "$out"
cd "$repo"

if [ ! -f "$out/hello.elf" ] || [ test/guests/hello/hello.c -nt "$out/hello.elf" ] || [ test/guests/hello/link.ld -nt "$out/hello.elf" ]; then
  gcc -m32 -Os -nostdlib -ffreestanding -fno-pic -fno-stack-protector -static -no-pie -Wall -Wextra -Werror \
    -T test/guests/hello/link.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments -o "$out/hello.elf.tmp" test/guests/hello/hello.c
  mv "$out/hello.elf.tmp" "$out/hello.elf"
fi

if [ ! -x "$out/fake-monitor" ] || [ test/guests/fake-monitor/fake-monitor.c -nt "$out/fake-monitor" ]; then
  # Dynamically linked, as solo5's tenders are: a static glibc binary's start-up calls readlink, which
  # solo5-hvt's seccomp allowlist does not have.
  gcc -O2 -Wall -Wextra -Werror -o "$out/fake-monitor.tmp" test/guests/fake-monitor/fake-monitor.c
  mv "$out/fake-monitor.tmp" "$out/fake-monitor"
fi

if [ ! -x "$out/urunit" ] || [ test/guests/urunit/urunit.c -nt "$out/urunit" ]; then
  gcc -O2 -static -Wall -Wextra -Werror -o "$out/urunit.tmp" test/guests/urunit/urunit.c
  mv "$out/urunit.tmp" "$out/urunit"
fi

if [ ! -x "$out/pause" ] || [ test/guests/pause/pause.c -nt "$out/pause" ]; then
  gcc -O2 -static -Wall -Wextra -Werror -o "$out/pause.tmp" test/guests/pause/pause.c
  mv "$out/pause.tmp" "$out/pause"
fi

# The kernel package linux-image-amd64 depends on (downloaded with apt, unpacked with dpkg -x).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$kpkg" ]; then
  apt-get update -qq
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
[ -n "$kpkg" ] || { echo "build-guests: cannot find the kernel package (apt-get update?)" >&2; exit 1; }
kdir=$repo/.cache/kernel/$kpkg
if [ ! -f "$kdir/.done" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir"
  (cd "$kdir" && apt-get download "$kpkg" >/dev/null 2>&1 && dpkg -x ./*.deb root && rm -f ./*.deb)
  touch "$kdir/.done"
fi
kver=${kpkg#linux-image-}
if [ ! -f "$out/vmlinux" ] || [ "$kdir/.done" -nt "$out/vmlinux" ]; then
  # bzImage: the payload is xz; decompress from the first xz magic (the same trick as extract-vmlinux).
  bz=$kdir/root/boot/vmlinuz-$kver
  off=$(grep -abo $'\xfd7zXZ\x00' "$bz" | head -1 | cut -d: -f1)
  tail -c +$((off + 1)) "$bz" | xz -dc 2>/dev/null > "$out/vmlinux.tmp" || true
  head -c 4 "$out/vmlinux.tmp" | grep -q $'\x7fELF' || { echo "build-guests: could not extract vmlinux" >&2; exit 1; }
  mv "$out/vmlinux.tmp" "$out/vmlinux"
fi

stamp=$(cat test/guests/linux/* "$out/urunit" "$kdir/.done" /bin/busybox scripts/build-guests.sh | sha256sum | cut -c1-16)
if [ ! -f "$out/initramfs.gz" ] || [ "$(cat "$out/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
  ird=$(mktemp -d) && chmod 0755 "$ird"
  trap 'rm -rf "$ird"' EXIT
  mkdir -p "$ird"/{bin,sbin,proc,sys,dev,modules,newroot,lower,upper,tmp,etc/acpi}
  cp /bin/busybox "$ird/bin/busybox"
  for a in sh cat echo mount umount insmod mkdir switch_root dd printf poweroff grep sleep ls head ip ipcalc nc id pwd env wc tr acpid dmesg; do ln -s busybox "$ird/bin/$a"; done
  install -m 0755 "$out/urunit" "$ird/urunit"
  echo 'PWRF power.sh' > "$ird/etc/acpid.conf"
  printf '#!/bin/sh\necho "guest: power button pressed, shutting down"\npoweroff -f\n' > "$ird/etc/acpi/power.sh"
  chmod 0755 "$ird/etc/acpi/power.sh"
  install -m 0755 test/guests/linux/init "$ird/init"
  install -m 0755 test/guests/linux/app "$ird/bin/app"
  install -m 0755 test/guests/linux/guest-exit "$ird/bin/guest-exit"
  # 9p and virtio-fs over virtio (mmio for microvm, pci for pc), virtio-blk, virtio-net, ext4, overlay and their dependencies, in load order.
  mdir=$kdir/root/lib/modules/$kver
  want="kernel/drivers/net/virtio_net.ko kernel/crypto/crc32c_generic.ko kernel/fs/overlayfs/overlay.ko kernel/fs/ext4/ext4.ko kernel/fs/9p/9p.ko kernel/net/9p/9pnet_virtio.ko kernel/fs/fuse/virtiofs.ko kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko kernel/drivers/input/evdev.ko kernel/drivers/acpi/button.ko"
  order=()
  # No depmod here: dependencies come from each module's own modinfo "depends=" string.
  path_of() { find "$mdir/kernel" -name "$(echo "$1" | sed 's/[-_]/[-_]/g').ko*" | head -1 | sed "s|^$mdir/||"; }
  add() {
    local m=$1 d deps
    deps=$(tr '\0' '\n' < "$mdir/$m" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
    for d in $deps; do add "$(path_of "$d")"; done
    [[ " ${order[*]} " == *" $m "* ]] || order+=("$m")
  }
  for m in $want; do add "$m"; done
  : > "$ird/modules.order"
  for m in "${order[@]}"; do
    name=$(basename "$m" .xz)
    if [[ $m == *.xz ]]; then xz -dc "$mdir/$m" > "$ird/modules/$name"; else cp "$mdir/$m" "$ird/modules/$name"; fi
    echo "$name" >> "$ird/modules.order"
  done
  (cd "$ird" && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -1) > "$out/initramfs.gz.tmp"
  mv "$out/initramfs.gz.tmp" "$out/initramfs.gz"
  echo "$stamp" > "$out/initramfs.stamp"
fi
echo "build-guests: $(cd "$out" && ls)"
