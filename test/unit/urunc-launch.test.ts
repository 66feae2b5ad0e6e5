// bin/urunc-launch (native/launch.c): the monitor container's first program execs the command line
// the shim wrote at Start, in its own place (same pid), and refuses a file it cannot trust with 127.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'urunc-launch');

function launch(content: Buffer | undefined) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'launch-'));
  const file = path.join(dir, 'argv');
  if (content) fs.writeFileSync(file, content);
  try {
    return spawnSync(BIN, [file], { encoding: 'utf8' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const argv = (...a: string[]) => Buffer.from(a.map((x) => `${x}\0`).join(''));

describe('urunc-launch', () => {
  it('execs the hypervisor with its arguments intact (spaces, empty words), in its own pid', () => {
    const r = launch(argv('/bin/sh', '-c', 'echo "$$" "$1" "[$2]"', 'sh', 'two words', ''));
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${r.pid} two words []\n`);
  });

  it('a missing, empty, unterminated or relative command line: 127 and the reason', () => {
    for (const [content, reason] of [[undefined, 'No such file'], [Buffer.alloc(0), 'empty or not NUL-terminated'], [Buffer.from('/bin/true'), 'empty or not NUL-terminated'], [argv('true'), 'not an absolute path'], [argv('/nonexistent/qemu'), 'exec /nonexistent/qemu']] as const) {
      const r = launch(content);
      expect(r.status, reason).toBe(127);
      expect(r.stderr).toContain(reason);
    }
  });
});
