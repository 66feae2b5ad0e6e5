#!/usr/bin/env bash
# Unpacks containerd from Debian's newer suites (trixie = 1.7, sid = 2.x) into a private cache
# without installing anything system-wide. Idempotent: a complete cache entry is reused.
# Usage: scripts/fetch-containerd.sh [CACHE_DIR]   (default: .cache/containerd under the repo)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$repo/.cache/containerd}
mkdir -p "$cache"

need=()
for suite in trixie sid; do
  [ -x "$cache/$suite/usr/bin/containerd" ] || need+=("$suite")
done
[ ${#need[@]} -eq 0 ] && exit 0

# The mirror is read from the machine's own bookworm entry; none is written into the repo.
src=/etc/apt/sources.list.d/debian.sources
uri=$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)
if [ -z "$uri" ]; then
  uri=$(awk '$1=="deb" && $0 ~ /bookworm/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$uri" ] || { echo "fetch-containerd: no Debian mirror found in apt configuration" >&2; exit 1; }

list=/etc/apt/sources.list.d/urunc-ts-newer.sources
pref=/etc/apt/preferences.d/urunc-ts-newer
cleanup() { rm -f "$list" "$pref"; apt-get update -qq >/dev/null 2>&1 || true; }
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
tmp=$(mktemp -d); chmod 755 "$tmp"
for suite in "${need[@]}"; do
  (cd "$tmp" && rm -f containerd_*.deb && apt-get download -qq "containerd/$suite" >/dev/null)
  rm -rf "$cache/$suite.tmp" && mkdir -p "$cache/$suite.tmp"
  dpkg -x "$tmp"/containerd_*.deb "$cache/$suite.tmp"
  rm -rf "$cache/$suite" && mv "$cache/$suite.tmp" "$cache/$suite"
  "$cache/$suite/usr/bin/containerd" --version
done
rm -rf "$tmp"
