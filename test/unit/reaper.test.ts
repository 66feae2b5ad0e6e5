// The reaper with real processes. This test file's worker becomes a child subreaper, so a
// grandchild whose parent exits is re-parented to it, as container processes are to the daemon.
import fs from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { setChildSubreaper } from '../../src/sys/libc.js';
import { Reaper } from '../../src/task/reaper.js';
import { run } from '../../src/sys/spawn.js';

beforeAll(() => setChildSubreaper());

function stateOf(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] as string, ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Starts a grandchild running `body` that outlives its parent shell; returns its pid. */
async function orphan(body: string): Promise<number> {
  const r = await run('sh', ['-c', `(${body}) >/dev/null 2>&1 & echo $!`]);
  return Number(r.stdout.trim());
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

it('regression: an exit swept before watch() is still reported with its real status, not 255', async () => {
  const reaper = new Reaper();
  const pid = await orphan('sleep 0.2; exit 7');
  await until(() => stateOf(pid)?.state === 'Z' && stateOf(pid)?.ppid === process.pid);
  reaper.poll(); // a SIGCHLD for something else: the sweep reaps the zombie nobody watches yet
  expect(stateOf(pid)).toBeUndefined();
  const got: number[] = [];
  reaper.watch(pid, (status) => got.push(status));
  expect(got).toEqual([7]);
});

it('reports the exit of a watched orphan once, with 128+signal for a signal', async () => {
  const reaper = new Reaper();
  const pid = await orphan('exec sleep 30');
  await until(() => stateOf(pid)?.ppid === process.pid);
  const got: number[] = [];
  reaper.watch(pid, (status) => got.push(status));
  expect(got).toEqual([]);
  process.kill(pid, 'SIGKILL');
  await until(() => stateOf(pid)?.state === 'Z');
  reaper.poll();
  reaper.poll();
  expect(got).toEqual([137]);
});
