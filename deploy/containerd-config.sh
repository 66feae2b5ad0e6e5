#!/usr/bin/env bash
# Prints the containerd config that adds this runtime to the CRI plugin as handler NAME (default
# "urunc", the RuntimeClass handler): config version 2 tables for containerd 1.6/1.7, version 3 for
# 2.x, the com.urunc.unikernel.* annotations passed through to the shim, and a runc runtime too
# (a config that names any runtime replaces containerd's built-in list, so runc must stay listed).
# Options: --version 2|3 (default: from `containerd --version`), --handler NAME, --config-path
# FILE (the runtime options' ConfigPath, default /etc/urunc/config.toml), --no-runc (the file already
# defines runc), --cni-conf-dir DIR, --sandbox-image REF, --restrict-oom-score-adj (test hosts),
# --sandboxer podsandbox|shim (2.x only; "shim": this shim holds each pod's namespaces itself and no
# pause container runs; default podsandbox, containerd's pause-container sandbox).
set -euo pipefail
version= handler=urunc config_path=/etc/urunc/config.toml runc=1 cni= sandbox= oom= sandboxer=podsandbox
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --handler) handler=$2; shift 2 ;;
    --config-path) config_path=$2; shift 2 ;;
    --no-runc) runc=; shift ;;
    --cni-conf-dir) cni=$2; shift 2 ;;
    --sandbox-image) sandbox=$2; shift 2 ;;
    --restrict-oom-score-adj) oom=1; shift ;;
    --sandboxer) sandboxer=$2; shift 2 ;;
    *) echo "containerd-config: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $handler =~ ^[a-z0-9][a-z0-9.-]*$ ]] || { echo "containerd-config: bad handler name $handler" >&2; exit 2; }
if [ -z "$version" ]; then
  v=$(containerd --version | awk '{print $3}' | sed 's/^v//')
  case "$v" in 1.*) version=2 ;; *) version=3 ;; esac
fi
case "$sandboxer" in podsandbox|shim) ;; *) echo "containerd-config: --sandboxer must be podsandbox or shim" >&2; exit 2 ;; esac
[ "$sandboxer" = shim ] && [ "$version" != 3 ] && { echo "containerd-config: --sandboxer shim needs containerd 2.x (config version 3): 1.6 and 1.7 have no sandbox API for shims" >&2; exit 2; }
annotations='["com.urunc.unikernel.*"]'
case "$version" in
  2)
    p='plugins."io.containerd.grpc.v1.cri"'
    # The parent table only when it gets keys: an existing config may define it already.
    if [ -n "$sandbox$oom" ]; then
      echo "[$p]"
      [ -n "$sandbox" ] && echo "  sandbox_image = \"$sandbox\""
      [ -n "$oom" ] && echo "  restrict_oom_score_adj = true"
    fi
    if [ -n "$runc" ]; then
      echo "[$p.containerd.runtimes.runc]"
      echo '  runtime_type = "io.containerd.runc.v2"'
    fi
    echo "[$p.containerd.runtimes.$handler]"
    echo '  runtime_type = "io.containerd.urunc.v2"'
    echo "  pod_annotations = $annotations"
    echo "  container_annotations = $annotations"
    echo "[$p.containerd.runtimes.$handler.options]"
    echo "  ConfigPath = \"$config_path\""
    if [ -n "$cni" ]; then
      echo "[$p.cni]"
      echo '  bin_dir = "/usr/lib/cni"'
      echo "  conf_dir = \"$cni\""
    fi
    ;;
  3)
    r="plugins.'io.containerd.cri.v1.runtime'"
    if [ -n "$sandbox" ]; then
      echo "[plugins.'io.containerd.cri.v1.images'.pinned_images]"
      echo "  sandbox = '$sandbox'"
    fi
    if [ -n "$oom" ]; then
      echo "[$r]"
      echo "  restrict_oom_score_adj = true"
    fi
    if [ -n "$runc" ]; then
      echo "[$r.containerd.runtimes.runc]"
      echo "  runtime_type = 'io.containerd.runc.v2'"
    fi
    echo "[$r.containerd.runtimes.$handler]"
    echo "  runtime_type = 'io.containerd.urunc.v2'"
    [ "$sandboxer" = shim ] && echo "  sandboxer = 'shim'"
    echo "  pod_annotations = $annotations"
    echo "  container_annotations = $annotations"
    if [ "$sandboxer" = shim ]; then
      # No options table: containerd 2.1-2.3's client refuses to start a container in a shim-owned
      # sandbox when its runtime options are not runc's ("can't unmarshal type runtimeoptions.v1.Options").
      # The shim reads /etc/urunc/config.toml, or URUNC_CONFIG_PATH from containerd's environment.
      echo "  # urunc config: $config_path (URUNC_CONFIG_PATH in containerd's environment unless it is /etc/urunc/config.toml)"
    else
      echo "[$r.containerd.runtimes.$handler.options]"
      echo "  ConfigPath = '$config_path'"
    fi
    if [ -n "$cni" ]; then
      echo "[$r.cni]"
      echo "  bin_dirs = ['/usr/lib/cni']"
      echo "  conf_dir = '$cni'"
    fi
    ;;
  *) echo "containerd-config: --version must be 2 or 3" >&2; exit 2 ;;
esac
