// `start` on its own, without containerd: the output contract, group reuse, and the idle exit of
// a daemon that never receives a task.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { socketAddress, socketPath } from '../../src/shim/address.js';
import { REPO, runCmd, waitFor } from './containerd.js';

const BIN = path.join(REPO, 'bin', 'containerd-shim-urunc-v2');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function bundle(annotations: Record<string, string> = {}): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'start-'));
  dirs.push(d);
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', annotations }));
  return d;
}

it('prints the plain address, writes address and shim.pid, reuses the group daemon, and idles out', async () => {
  const grpc = path.join(os.tmpdir(), `fake-containerd-${process.pid}.sock`);
  const env = { ...process.env, URUNC_SHIM_IDLE_EXIT_MS: '1500', TTRPC_ADDRESS: `${grpc}.ttrpc` };
  const flags = (id: string) => ['-namespace', 'itest', '-address', grpc, '-publish-binary', '/bin/true', '-id', id, 'start'];

  const first = bundle();
  const r1 = await runCmd(BIN, flags('idle1'), { cwd: first, env });
  expect(r1.stderr).toBe('');
  expect(r1.code).toBe(0);
  const expected = socketAddress(grpc, 'itest', 'idle1');
  expect(r1.stdout).toBe(expected);
  expect(fs.readFileSync(path.join(first, 'address'), 'utf8')).toBe(expected);
  const daemon = Number(fs.readFileSync(path.join(first, 'shim.pid'), 'utf8'));
  expect(fs.existsSync(`/proc/${daemon}`)).toBe(true);
  // The daemon is detached: its own session, no stdio shared with `start`'s caller.
  const stat = fs.readFileSync(`/proc/${daemon}/stat`, 'utf8').slice(fs.readFileSync(`/proc/${daemon}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  expect(Number(stat[3])).toBe(daemon); // session id == pid (setsid)
  for (const fd of ['0', '1', '2']) expect(fs.readlinkSync(`/proc/${daemon}/fd/${fd}`)).toBe('/dev/null');

  // A second container of the same pod reuses the live daemon: same address, no new daemon.
  const second = bundle({ 'io.kubernetes.cri.sandbox-id': 'idle1' });
  const r2 = await runCmd(BIN, flags('idle2'), { cwd: second, env });
  expect(r2.code).toBe(0);
  expect(r2.stdout).toBe(expected);
  expect(fs.existsSync(path.join(second, 'shim.pid'))).toBe(false);

  // Nobody ever connects with a task: the daemon leaves and removes its socket.
  await waitFor('idle daemon to exit', () => (fs.existsSync(`/proc/${daemon}`) ? undefined : true), 15_000);
  expect(fs.existsSync(socketPath(expected))).toBe(false);
});

it('fails clearly, with nothing printed on stdout, when a flag is missing', async () => {
  const r = await runCmd(BIN, ['-namespace', 'x', 'start'], { cwd: bundle() });
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/-id and -namespace are required/);
});
