// The dependency rules of shared/style.md, checked on the source: rootfs/ and monitors/ never
// import shim/; task/ (the domain) never imports shim/ or generated protobuf code; child processes
// are only spawned through src/sys/spawn.ts.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '..', '..', 'src');

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []);
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1] as string)
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(SRC, path.resolve(path.dirname(file), s)));
}

const RULES: Array<[layer: string, forbidden: string[]]> = [
  ['task', ['shim/', 'gen/']],
  ['rootfs', ['shim/', 'gen/']],
  ['monitors', ['shim/', 'gen/']],
  ['sys', ['shim/', 'task/', 'gen/']],
];

describe('layering', () => {
  it.each(RULES)('src/%s imports none of %j', (layer, forbidden) => {
    const bad: string[] = [];
    for (const f of filesUnder(path.join(SRC, layer))) {
      for (const imp of importsOf(f)) {
        if (forbidden.some((p) => imp.startsWith(p))) bad.push(`${path.relative(SRC, f)} -> ${imp}`);
      }
    }
    expect(bad).toEqual([]);
  });

  // Regression (CRI pods hung in Delete): the daemon's reaper sweeps zombies it does not own, so a
  // child spawned past spawnOwned could have its exit stolen and its promise never settle. Only
  // src/sys/spawn.ts (and `start`, which runs before any reaper exists) may spawn.
  it('only src/sys/spawn.ts and src/shim/start.ts use node:child_process', () => {
    const users = filesUnder(SRC).filter((f) => /from\s+['"](node:)?child_process['"]/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f)).sort();
    expect(users).toEqual(['shim/start.ts', 'sys/spawn.ts']);
  });

  it('the checker sees imports (guards against a rule that cannot fail)', () => {
    expect(importsOf(path.join(SRC, 'shim', 'serve.ts'))).toContain('task/service.js');
  });
});
