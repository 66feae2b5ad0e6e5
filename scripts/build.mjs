// Bundles the shim into dist/ (ESM, code-split per action so `start`/`delete` load little) and
// compiles the executable bin/containerd-shim-urunc-v2 (the native front, native/front.c),
// bin/urunc-launch (native/launch.c, the first program of a unikernel's monitor container) and
// bin/urunc-loopwatch (native/loopwatch.c, the daemon's event-loop watchdog).
import { build } from 'esbuild';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
await build({
  // Named after the shim, so the daemon's argv (node .../containerd-shim-urunc-v2.mjs) says what it is.
  entryPoints: { 'containerd-shim-urunc-v2': path.join(root, 'src/main.ts') },
  outdir: path.join(root, 'dist'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // koffi carries a native addon; it is loaded from node_modules at run time, only by the daemon and `delete`.
  external: ['koffi'],
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
});
const cc = process.env.CC || 'cc';
/** Compiles native/<name>.c into bin/<out> (atomically), or exits with why. */
function compile(source, out, flags = []) {
  const target = path.join(root, 'bin', out);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', ...flags, '-o', `${target}.tmp`, path.join(root, 'native', source)], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${cc} failed to compile native/${source} (install gcc)`);
    process.exit(1);
  }
  fs.renameSync(`${target}.tmp`, target);
}
// The executable containerd runs is the native front (native/front.c): it forwards `start` and
// `delete` to the warm daemon and execs node on dist/containerd-shim-urunc-v2.mjs for everything else.
compile('front.c', 'containerd-shim-urunc-v2', [`-DNODE_BIN=${JSON.stringify(process.execPath)}`]);
// Dynamic, as the monitors are (the monitor root binds the host's libraries): a static glibc's start-up
// also reads /proc/self/exe, which solo5-hvt's seccomp allowlist (urunc's) does not permit.
compile('launch.c', 'urunc-launch');
// The daemon's event-loop watchdog, a process of its own (src/shim/loop-watchdog.ts).
compile('loopwatch.c', 'urunc-loopwatch');
