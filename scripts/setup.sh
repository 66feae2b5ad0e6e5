#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian 12 machine, as root, idempotently:
# Debian packages (containerd, runc, qemu, gcc for the test guests, patchelf), npm packages (from
# package-lock.json), containerd 1.7 and 2.x, Docker 28 (sid) and 26 (trixie) as a test client, trixie's virtiofsd and criu and the guest kernel unpacked into .cache/ (never
# installed system-wide), the test guests in .cache/guests, and the built shim in bin/.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

packages=(containerd runc containernetworking-plugins iptables protobuf-compiler busybox-static util-linux mount bsdutils iproute2 e2fsprogs tar gzip xz-utils cpio ca-certificates qemu-system-x86 gcc libc6-dev patchelf)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# npm ci only when the installed tree does not match the lock file.
if ! cmp -s package-lock.json node_modules/.urunc-lock 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.urunc-lock
fi

bash scripts/fetch-newer.sh
bash scripts/build-guests.sh
npm run --silent build
echo "setup: ready ($(containerd --version | awk '{print $3}'), $("$repo/.cache/containerd/trixie/usr/bin/containerd" --version | awk '{print $3}'), $("$repo/.cache/containerd/sid/usr/bin/containerd" --version | awk '{print $3}'), virtiofsd $("$repo/.cache/virtiofsd/virtiofsd" --version | awk "{print \$2}"), criu $("$repo/.cache/criu/bin/criu" --version | awk "/Version/ {print \$2}"), docker $("$repo/.cache/docker/sid/usr/sbin/dockerd" --version | awk "{print \$3}" | tr -d ,) and $("$repo/.cache/docker/trixie/usr/sbin/dockerd" --version | awk "{print \$3}" | tr -d ,))"
