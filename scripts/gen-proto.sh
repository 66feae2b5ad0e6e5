#!/usr/bin/env bash
# Regenerates src/gen/ from proto/ with Debian's protoc and ts-proto. src/gen/ is committed so a build
# needs no protoc; CI reruns this and fails if the output differs (tests the contract stays in sync).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
command -v protoc >/dev/null || { echo "gen-proto: protoc missing (apt-get install protobuf-compiler)" >&2; exit 1; }
out=${1:-src/gen}
rm -rf "$out" && mkdir -p "$out"
# v3 is wire-identical to v2 (same messages and numbers, other package), so one set of types serves both.
mapfile -t files < <(cd proto && find . -name '*.proto' ! -path './containerd/task/v3/*' | sed 's|^\./||' | sort)
protoc -I proto \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out="$out" \
  --ts_proto_opt=esModuleInterop=true,forceLong=bigint,useDate=false,env=both,importSuffix=.js,outputServices=false,outputJsonMethods=false,useOptionals=none,exportCommonSymbols=false,outputTypeRegistry=false,fileSuffix= \
  "${files[@]}"
