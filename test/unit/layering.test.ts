// The dependency rules of shared/style.md, checked on the source: rootfs/ and monitors/ never
// import shim/; task/ (the domain) never imports shim/ or generated protobuf code; a Create flows one
// way, task, then monitors, then rootfs (rootfs imports neither, monitors never imports task), with
// no import cycle among their files; child processes are only spawned through src/sys/spawn.ts.
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
  ['rootfs', ['shim/', 'gen/', 'task/', 'monitors/']],
  ['monitors', ['shim/', 'gen/', 'task/']],
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

  it('no import cycle among the files of src/task, src/monitors and src/rootfs (type imports included)', () => {
    const files = ['task', 'monitors', 'rootfs'].flatMap((l) => filesUnder(path.join(SRC, l))).map((f) => path.relative(SRC, f));
    const edges = new Map(files.map((f) => [f, importsOf(path.join(SRC, f)).map((i) => i.replace(/\.js$/, '.ts')).filter((i) => files.includes(i))]));
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, stack: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const g of edges.get(f) ?? []) visit(g, [...stack, f]);
      state.set(f, 'done');
    };
    for (const f of files) visit(f, []);
    expect(cycles).toEqual([]);
    // (The checker sees edges: prepare imports the image-file helpers.)
    expect(edges.get('task/prepare.ts')).toContain('task/image-files.ts');
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
