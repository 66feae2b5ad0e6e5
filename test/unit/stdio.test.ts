// Process IO against real fifos and pipes, the way containerd's client sets them up.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ProcessIO } from '../../src/task/stdio.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stdio-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function writer(fd: number, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn('head', args, { stdio: ['ignore', fd, 'ignore'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('exit', (code, sig) => {
      clearTimeout(timer);
      resolve(code ?? (sig ? 128 + 9 : 1));
    });
  });
}

it('copies container output into the stdout fifo', async () => {
  const fifo = path.join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const io = await ProcessIO.open({ stdin: '', stdout: fifo, stderr: '', terminal: false }, { containerId: 'c', namespace: 'n' });
  expect(await writer(io.stdio.stdout as number, ['-c', '5', '/etc/passwd'])).toBe(0);
  io.releaseChildFds();
  await io.drain(2000);
  const buf = Buffer.alloc(16);
  expect(fs.readSync(reader, buf)).toBe(5);
  expect(buf.subarray(0, 5).toString()).toBe(fs.readFileSync('/etc/passwd', 'utf8').slice(0, 5));
  io.destroy();
  fs.closeSync(reader);
});

it('regression: when the client stops reading, output is drained so the container never blocks', async () => {
  const fifo = path.join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const io = await ProcessIO.open({ stdin: '', stdout: fifo, stderr: '', terminal: false }, { containerId: 'c', namespace: 'n' });
  fs.closeSync(reader);
  // 4 MiB is far more than a pipe (64 KiB) plus a fifo buffer hold: without draining, head blocks and is killed.
  expect(await writer(io.stdio.stdout as number, ['-c', String(4 << 20), '/dev/zero'])).toBe(0);
  io.destroy();
});
