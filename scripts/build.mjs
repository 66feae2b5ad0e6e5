// Bundles the shim into dist/ (ESM, code-split per action so `start`/`delete` load little) and
// writes the executable bin/containerd-shim-urunc-v2, which runs under plain `node`.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'src/main.ts')],
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
const bin = path.join(root, 'bin', 'containerd-shim-urunc-v2');
fs.mkdirSync(path.dirname(bin), { recursive: true });
fs.writeFileSync(bin, `#!/usr/bin/env node\nimport '../dist/main.mjs';\n`, { mode: 0o755 });
fs.chmodSync(bin, 0o755);
