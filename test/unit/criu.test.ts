// Ordinary containers' checkpoint and restore around runc (src/task/criu.ts): the errors a user sees
// and what is kept or removed, with a fake runc that fails as runc does.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, ShimError } from '../../src/errors.js';
import { criuCheckpoint, criuRestore, isCriuCheckpoint } from '../../src/task/criu.js';

let bundle: string;
let images: string;
beforeEach(() => {
  bundle = fs.mkdtempSync(path.join(os.tmpdir(), 'criu-b-'));
  images = fs.mkdtempSync(path.join(os.tmpdir(), 'criu-i-'));
});
afterEach(() => {
  fs.rmSync(bundle, { recursive: true, force: true });
  fs.rmSync(images, { recursive: true, force: true });
});

const opts = { exit: false, imagePath: '', workPath: '' };

describe('criu through runc', () => {
  it('a node without criu is told so (runc 1.1\'s message), as FailedPrecondition', async () => {
    const runc = {
      checkpoint: async () => {
        throw new ShimError(Code.Unknown, 'runc checkpoint: CRIU version check failed: exec: "criu": executable file not found in $PATH');
      },
      restore: async () => 0,
    };
    await expect(criuCheckpoint(runc, 't', bundle, images, opts)).rejects.toMatchObject({
      code: Code.FailedPrecondition,
      message: expect.stringMatching(/^checkpoint of an ordinary container needs criu on the node/),
    });
  });

  it('a failed dump keeps criu\'s dump.log in the bundle and names it; the temporary work directory is removed', async () => {
    const runc = {
      checkpoint: async (_id: string, _b: string, o: { workPath: string }) => {
        fs.writeFileSync(path.join(o.workPath, 'dump.log'), 'Error (criu/files-reg.c): Can\'t lookup mount\n');
        throw new ShimError(Code.Unknown, 'runc checkpoint: criu failed: type NOTIFY errno 0');
      },
      restore: async () => 0,
    };
    const err = (await criuCheckpoint(runc, 't', bundle, images, opts).catch((e: unknown) => e)) as ShimError;
    expect(err.message).toBe(`checkpoint of an ordinary container (criu through runc): runc checkpoint: criu failed: type NOTIFY errno 0 (criu log: ${bundle}/criu-dump.log)`);
    expect(fs.readFileSync(path.join(bundle, 'criu-dump.log'), 'utf8')).toMatch(/Can't lookup mount/);
    expect(fs.readdirSync(bundle)).toEqual(['criu-dump.log']);
  });

  it('restore refuses a directory without criu\'s inventory before running runc, and names restore.log when runc fails', async () => {
    const calls: string[] = [];
    const runc = {
      checkpoint: async () => undefined,
      restore: async (_id: string, _b: string, o: { workPath: string; imagePath: string }) => {
        calls.push(o.imagePath);
        fs.writeFileSync(path.join(o.workPath, 'restore.log'), 'Error\n');
        throw new ShimError(Code.Unknown, 'runc restore t: criu failed: type RESTORE errno 0');
      },
    };
    const io = { stdio: { stdin: 'ignore' as const, stdout: 'ignore' as const, stderr: 'ignore' as const } };
    expect(isCriuCheckpoint(images)).toBe(false);
    await expect(criuRestore(runc, 't', bundle, images, io)).rejects.toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/holds no criu images \(inventory\.img\)/) });
    expect(calls).toEqual([]);
    fs.writeFileSync(path.join(images, 'inventory.img'), '');
    await expect(criuRestore(runc, 't', bundle, images, io)).rejects.toThrow(`(criu log: ${bundle}/criu-work/restore.log)`);
    expect(calls).toEqual([images]);
  });
});
