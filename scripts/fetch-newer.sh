#!/usr/bin/env bash
# Unpacks what bookworm lacks from Debian's newer suites into private caches, without installing
# anything system-wide. Idempotent: a complete cache entry is reused.
#  - containerd 1.7 (trixie) and 2.x (sid): .cache/containerd/<suite>/usr/bin/containerd
#  - virtiofsd (trixie) with trixie's own loader and libraries (it needs a newer glibc):
#    .cache/virtiofsd/root, and .cache/virtiofsd/virtiofsd, a copy whose program interpreter and
#    RPATH name that private loader and library directory (patchelf), so it runs anywhere the
#    directory is visible, the monitor's root included (the shim binds a helper's loader dirs there).
#  - Docker as a test client: docker.io + docker-cli from trixie (26.x) and sid (28.x), with their
#    docker-init and docker-proxy: .cache/docker/<suite>/usr/sbin/dockerd, .../usr/bin/docker
#  - criu (trixie; bookworm has none), relocated the same way: .cache/criu/bin/criu. containerd 2.x's
#    CRI refuses CheckpointContainer without a criu binary on its PATH, whatever the runtime.
# Usage: scripts/fetch-newer.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=$repo/.cache/containerd
vcache=$repo/.cache/virtiofsd
ccache=$repo/.cache/criu
dcache=$repo/.cache/docker
mkdir -p "$cache"

need=()
for suite in trixie sid; do
  [ -x "$cache/$suite/usr/bin/containerd" ] && [ -x "$dcache/$suite/usr/sbin/dockerd" ] || need+=("$suite")
done
want_vfsd=0
[ -x "$vcache/virtiofsd" ] && [ -f "$vcache/.done" ] || want_vfsd=1
want_criu=0
[ -x "$ccache/bin/criu" ] && [ -f "$ccache/.done" ] || want_criu=1
if [ $((want_vfsd + want_criu)) -gt 0 ] && [[ " ${need[*]} " != *" trixie "* ]]; then need+=(trixie); fi
[ ${#need[@]} -eq 0 ] && exit 0

# The mirror is read from the machine's own bookworm entry; none is written into the repo.
src=/etc/apt/sources.list.d/debian.sources
uri=$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)
if [ -z "$uri" ]; then
  uri=$(awk '$1=="deb" && $0 ~ /bookworm/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$uri" ] || { echo "fetch-newer: no Debian mirror found in apt configuration" >&2; exit 1; }

list=/etc/apt/sources.list.d/urunc-ts-newer.sources
pref=/etc/apt/preferences.d/urunc-ts-newer
tmp=$(mktemp -d); chmod 755 "$tmp"
cleanup() { rm -f "$list" "$pref"; rm -rf "$tmp"; apt-get update -qq >/dev/null 2>&1 || true; }
trap cleanup EXIT
cat > "$list" <<SRC
Types: deb
URIs: $uri
Suites: ${need[*]}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat > "$pref" <<PREF
Package: *
Pin: release n=trixie
Pin-Priority: 1

Package: *
Pin: release n=sid
Pin-Priority: 1
PREF
apt-get update -qq >/dev/null

# Unpacks the named packages of one suite into a fresh directory, moved into place when complete.
unpack() {
  local suite=$1 dest=$2; shift 2
  (cd "$tmp" && rm -f ./*.deb && for p in "$@"; do apt-get download -qq "$p/$suite" >/dev/null; done)
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dest.tmp"; done
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

for suite in trixie sid; do
  [ -x "$cache/$suite/usr/bin/containerd" ] && continue
  unpack "$suite" "$cache/$suite" containerd
  "$cache/$suite/usr/bin/containerd" --version
done

for suite in trixie sid; do
  [ -x "$dcache/$suite/usr/sbin/dockerd" ] && continue
  mkdir -p "$dcache"
  unpack "$suite" "$dcache/$suite" docker.io docker-cli
  "$dcache/$suite/usr/sbin/dockerd" --version
done

if [ $want_vfsd = 1 ]; then
  rm -f "$vcache/.done"
  unpack trixie "$vcache/root" virtiofsd libc6 libseccomp2 libcap-ng0 libgcc-s1
  lib=$vcache/root/usr/lib/x86_64-linux-gnu
  cp "$vcache/root/usr/libexec/virtiofsd" "$vcache/virtiofsd.tmp"
  patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$vcache/virtiofsd.tmp"
  mv "$vcache/virtiofsd.tmp" "$vcache/virtiofsd"
  "$vcache/virtiofsd" --version
  touch "$vcache/.done"
fi

if [ $want_criu = 1 ]; then
  rm -f "$ccache/.done"
  # criu's dependencies and theirs (gnutls, nftables), all from trixie: the binary's RPATH names only this directory.
  unpack trixie "$ccache/root" criu libc6 libgcc-s1 libbsd0 libmd0 libgnutls30t64 libnet1 libnftables1 libnl-3-200 libprotobuf-c1 \
    libuuid1 libcompel1 libp11-kit0 libidn2-0 libunistring5 libtasn1-6 libnettle8t64 libhogweed6t64 libgmp10 libffi8 libmnl0 \
    libnftnl11 libxtables12 libjansson4 libedit2 libtinfo6
  lib=$ccache/root/usr/lib/x86_64-linux-gnu
  mkdir -p "$ccache/bin"
  cp "$ccache/root/usr/sbin/criu" "$ccache/bin/criu.tmp"
  patchelf --set-interpreter "$lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$lib" "$ccache/bin/criu.tmp"
  mv "$ccache/bin/criu.tmp" "$ccache/bin/criu"
  "$ccache/bin/criu" --version
  touch "$ccache/.done"
fi
