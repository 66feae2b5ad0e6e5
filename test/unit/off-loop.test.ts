// Kernel calls that can wait on a filesystem run off the event loop, bounded (src/sys/off-loop.ts),
// tried against a real filesystem that never answers: a FUSE mount whose daemon never replies
// (nobody reads /dev/fuse, so even the first lookup waits in the kernel until the connection is aborted).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MNT_DETACH, mount, umount } from '../../src/sys/libc.js';
import { bounded, KernelCallTimeout, poolMostlyStuck, stuckCalls } from '../../src/sys/off-loop.js';
import { resolveInRoot } from '../../src/rootfs/resolve-in-root.js';
import { hasMountsUnder, mountAll } from '../../src/rootfs/mounts.js';
import { readUruncJson } from '../../src/task/image-files.js';
import { copyVolumeFiles } from '../../src/rootfs/volumes.js';

const BOUND_MS = 400;
const canFuse = process.getuid?.() === 0 && fs.existsSync('/dev/fuse');

describe.runIf(canFuse)(`a filesystem that never answers (a FUSE mount nobody serves)${canFuse ? '' : ' [skipped: needs root and /dev/fuse]'}`, () => {
  let dir: string;
  let hung: string;
  let fuseFd = -1;
  const saved = process.env.URUNC_KERNEL_CALL_TIMEOUT_MS;

  beforeAll(async () => {
    process.env.URUNC_KERNEL_CALL_TIMEOUT_MS = String(BOUND_MS);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'offloop-'));
    hung = path.join(dir, 'hung');
    fs.mkdirSync(hung);
    fuseFd = fs.openSync('/dev/fuse', 'r+');
    await mount('hung', hung, 'fuse.hung', 0, `fd=${fuseFd},rootmode=40000,user_id=0,group_id=0`);
  });

  afterAll(async () => {
    // Closing the device aborts the connection: every call still waiting fails with ENOTCONN.
    if (fuseFd >= 0) fs.closeSync(fuseFd);
    await umount(hung, MNT_DETACH);
    fs.rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.URUNC_KERNEL_CALL_TIMEOUT_MS;
    else process.env.URUNC_KERNEL_CALL_TIMEOUT_MS = saved;
  });

  /** Runs `call` while a timer counts how often the event loop got to run. */
  async function loopTicksDuring(call: () => Promise<unknown>): Promise<{ ticks: number; err: unknown }> {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    try {
      await call();
      return { ticks, err: undefined };
    } catch (err: unknown) {
      return { ticks, err };
    } finally {
      clearInterval(timer);
    }
  }

  it('the image-path walk (urunc.json, annotations) fails at its bound; the loop runs meanwhile', async () => {
    const r = await loopTicksDuring(() => resolveInRoot(hung, '/unikernel/kernel', 'com.urunc.unikernel.binary'));
    expect(r.err).toBeInstanceOf(KernelCallTimeout);
    expect(String(r.err)).toMatch(new RegExp(`com.urunc.unikernel.binary "/unikernel/kernel" in ${hung}: the kernel call did not return in ${BOUND_MS} ms`));
    // 400 ms at one tick per 20 ms: a blocked loop would have ticked once at most.
    expect(r.ticks).toBeGreaterThanOrEqual(10);
    await expect(readUruncJson(hung)).rejects.toThrow(KernelCallTimeout);
  });

  it('mount(2) that looks up a path on it (an overlay lower dir) fails at its bound, and nothing is mounted', async () => {
    const target = path.join(dir, 'rootfs');
    const upper = path.join(dir, 'upper');
    const work = path.join(dir, 'work');
    fs.mkdirSync(upper);
    fs.mkdirSync(work);
    const r = await loopTicksDuring(() => mountAll([{ type: 'overlay', source: 'overlay', target: '', options: [`lowerdir=${hung}/layer`, `upperdir=${upper}`, `workdir=${work}`] }], target));
    expect(String(r.err)).toMatch(new RegExp(`mount ${target}: the kernel call did not return in ${BOUND_MS} ms`));
    expect(r.ticks).toBeGreaterThanOrEqual(10);
    expect(await hasMountsUnder(target)).toBe(false);
  });

  it('a volume on it: copying its files into a root fails at the bound', async () => {
    const root = path.join(dir, 'guest-root');
    fs.mkdirSync(root);
    await expect(copyVolumeFiles(root, [{ source: path.join(hung, 'data.txt'), destination: '/data.txt' }])).rejects.toThrow(/stat .*data\.txt: the kernel call did not return/);
  });

  it('calls given up on are counted until the kernel lets them go', async () => {
    expect(stuckCalls()).toBeGreaterThan(0);
    const before = stuckCalls();
    // One more, then abort the connection: every waiting call returns (ENOTCONN) and is counted back.
    await expect(resolveInRoot(hung, '/x', 'x')).rejects.toThrow(KernelCallTimeout);
    expect(stuckCalls()).toBe(before + 1);
    // This worker's pool is libuv's default 4 threads, all held now: a daemon would send new containers elsewhere.
    expect(poolMostlyStuck()).toBe(true);
    fs.closeSync(fuseFd);
    fuseFd = -1;
    const deadline = Date.now() + 5000;
    while (stuckCalls() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stuckCalls()).toBe(0);
    expect(poolMostlyStuck()).toBe(false);
  });
});

describe('bounded', () => {
  it('passes a result or an error through when the work ends in time', async () => {
    await expect(bounded('x', Promise.resolve(7), 1000)).resolves.toBe(7);
    await expect(bounded('x', Promise.reject(new Error('boom')), 1000)).rejects.toThrow('boom');
  });
});
