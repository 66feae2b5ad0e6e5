#!/usr/bin/env bash
# Installs this runtime on a node, as root, idempotently:
#  1. the shim (bin/, dist/ and koffi, the one module the bundle loads at run time, from a built checkout) into
#     PREFIX (/opt/urunc-ts), and the `containerd-shim-urunc-v2` link into BINDIR (/usr/local/bin),
#     where containerd finds it on its PATH; node (>= 20) must be on the node;
#  2. the CRI runtime (deploy/containerd-config.sh) into containerd's config file, inside a
#     "# BEGIN urunc-ts" / "# END urunc-ts" block that a rerun replaces; a missing file is created
#     with the right config version; runc is added unless the file lists it already;
#  3. /etc/urunc/config.toml, only when there is none.
# Then restart containerd (--restart does it with systemctl when available).
# Options: --prefix DIR, --bindir DIR, --containerd-config FILE, --version 2|3, --handler NAME,
# --urunc-config FILE, --sandboxer podsandbox|shim (2.x: who holds a pod's namespaces, see the
# README), --restart.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/urunc-ts bindir=/usr/local/bin config=/etc/containerd/config.toml version= handler=urunc urunc_config=/etc/urunc/config.toml restart= sandboxer=podsandbox
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --bindir) bindir=$2; shift 2 ;;
    --containerd-config) config=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --handler) handler=$2; shift 2 ;;
    --urunc-config) urunc_config=$2; shift 2 ;;
    --sandboxer) sandboxer=$2; shift 2 ;;
    --restart) restart=1; shift ;;
    *) echo "install: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$src/dist/containerd-shim-urunc-v2.mjs" ] || { echo "install: $src has no dist/containerd-shim-urunc-v2.mjs (run npm ci && npm run build first)" >&2; exit 1; }
command -v node >/dev/null || { echo "install: node is not installed" >&2; exit 1; }

# The config version first: a bad combination fails before anything is installed.
if [ -z "$version" ]; then
  if [ -f "$config" ] && grep -qE '^\s*version\s*=\s*[0-9]' "$config"; then
    version=$(sed -nE 's/^\s*version\s*=\s*([0-9]+).*/\1/p' "$config" | head -1)
  else
    v=$(containerd --version | awk '{print $3}' | sed 's/^v//')
    case "$v" in 1.*) version=2 ;; *) version=3 ;; esac
  fi
fi
case "$version" in 2|3) ;; *) echo "install: $config is config version $version; only 2 (containerd 1.6/1.7) and 3 (2.x) are supported" >&2; exit 1 ;; esac
case "$sandboxer" in podsandbox) ;; shim) [ "$version" = 3 ] || { echo "install: --sandboxer shim needs containerd 2.x (config version 3); $config is version $version" >&2; exit 1; } ;; *) echo "install: --sandboxer must be podsandbox or shim" >&2; exit 1 ;; esac

# 1. The shim.
mkdir -p "$prefix" "$bindir"
rm -rf "$prefix.new" && mkdir -p "$prefix.new"
cp -a "$src/bin" "$src/dist" "$src/package.json" "$prefix.new/"
# The bundle in dist/ holds everything except koffi (a native addon; its prebuilt binary is in the
# @koromix/koffi-<platform> package), loaded from node_modules.
mkdir -p "$prefix.new/node_modules"
for m in "$src"/node_modules/koffi "$src"/node_modules/@koromix; do [ -e "$m" ] && cp -a "$m" "$prefix.new/node_modules/"; done
[ -d "$prefix.new/node_modules/koffi" ] || { echo "install: $src/node_modules/koffi missing (run npm ci)" >&2; exit 1; }
rm -rf "$prefix.old" && { [ -d "$prefix" ] && mv "$prefix" "$prefix.old" || true; }
mv "$prefix.new" "$prefix" && rm -rf "$prefix.old"
ln -sfn "$prefix/bin/containerd-shim-urunc-v2" "$bindir/containerd-shim-urunc-v2"

# 2. containerd's config.
mkdir -p "$(dirname "$config")"
[ -f "$config" ] || echo "version = $version" > "$config"
grep -qE '^\s*version\s*=' "$config" || { echo "install: $config has no version line (a version 1 config); migrate it first (containerd config migrate)" >&2; exit 1; }
base=$(sed '/^# BEGIN urunc-ts$/,/^# END urunc-ts$/d' "$config")
runc_opt=()
grep -qE 'runtimes\.runc\]|runtimes\.["'\'']runc["'\'']\]' <<<"$base" && runc_opt=(--no-runc)
block=$(bash "$src/deploy/containerd-config.sh" --version "$version" --handler "$handler" --config-path "$urunc_config" --sandboxer "$sandboxer" "${runc_opt[@]}")
tmp=$(mktemp "$config.XXXXXX")
{ printf '%s\n' "$base"; echo '# BEGIN urunc-ts'; printf '%s\n' "$block"; echo '# END urunc-ts'; } > "$tmp"
chmod --reference="$config" "$tmp" 2>/dev/null || chmod 0644 "$tmp"
mv "$tmp" "$config"

# 3. The runtime config, kept if present.
if [ ! -f "$urunc_config" ]; then
  mkdir -p "$(dirname "$urunc_config")"
  printf '%s\n' '# urunc-ts runtime config (urunc'"'"'s keys; see the README)' '[monitors.qemu]' 'accelerator = "auto"' > "$urunc_config"
fi

if [ -n "$restart" ]; then
  if command -v systemctl >/dev/null && systemctl is-active --quiet containerd; then systemctl restart containerd; else echo "install: restart containerd yourself" >&2; fi
fi
echo "install: shim at $bindir/containerd-shim-urunc-v2, handler \"$handler\" in $config (config version $version)"
if [ "$sandboxer" = shim ] && [ "$urunc_config" != /etc/urunc/config.toml ]; then
  echo "install: with --sandboxer shim the runtime options cannot name $urunc_config (containerd 2.1-2.3); set URUNC_CONFIG_PATH=$urunc_config in containerd's environment" >&2
fi
