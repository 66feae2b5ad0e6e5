// `start` on its own, without containerd: the output contract, group reuse, and the idle exit of
// a daemon that never receives a task.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { NODE_GROUP, socketAddress, socketPath } from '../../src/shim/address.js';
import { REPO, runCmd, waitFor } from './containerd.js';
import { Any } from '../../src/gen/google/protobuf/any.js';
import { Options } from '../../src/gen/runtimeoptions/api.js';

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

it('prints the plain address, writes address and shim.pid, reuses the node daemon through the front, and leaves when containerd is gone', async () => {
  const grpc = path.join(os.tmpdir(), `fake-containerd-${process.pid}.sock`);
  const trace = path.join(os.tmpdir(), `front-trace-${process.pid}`);
  fs.writeFileSync(trace, '');
  // No containerd answers at TTRPC_ADDRESS: an idle daemon leaves within seconds despite the linger.
  const env = { ...process.env, URUNC_SHIM_LINGER_MS: '600000', TTRPC_ADDRESS: `${grpc}.ttrpc`, URUNC_FRONT_TRACE: trace };
  const flags = (id: string) => ['-namespace', 'itest', '-address', grpc, '-publish-binary', '/bin/true', '-id', id, 'start'];

  const first = bundle();
  const r1 = await runCmd(BIN, flags('idle1'), { cwd: first, env });
  expect(r1.stderr).toBe('');
  expect(r1.code).toBe(0);
  const expected = socketAddress(grpc, 'itest', NODE_GROUP);
  expect(r1.stdout).toBe(expected);
  expect(fs.readFileSync(path.join(first, 'address'), 'utf8')).toBe(expected);
  const daemon = Number(fs.readFileSync(path.join(first, 'shim.pid'), 'utf8'));
  expect(fs.existsSync(`/proc/${daemon}`)).toBe(true);
  // The daemon is detached: its own session, no stdio shared with `start`'s caller.
  const stat = fs.readFileSync(`/proc/${daemon}/stat`, 'utf8').slice(fs.readFileSync(`/proc/${daemon}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  expect(Number(stat[3])).toBe(daemon); // session id == pid (setsid)
  for (const fd of ['0', '1', '2']) expect(fs.readlinkSync(`/proc/${daemon}/fd/${fd}`)).toBe('/dev/null');
  // V8 sized for a long-lived daemon (DAEMON_NODE_FLAGS).
  expect(fs.readFileSync(`/proc/${daemon}/cmdline`, 'utf8').split('\0').slice(1, 5)).toEqual(['--max-semi-space-size=1', '--max-old-space-size=256', '--expose-gc', '--compact-on-every-full-gc']);

  // Another container of the namespace (a pod's or not): the front hands `start` to the live
  // daemon, which answers with its own address; no new daemon.
  const second = bundle({ 'io.kubernetes.cri.sandbox-id': 'pod-x' });
  const r2 = await runCmd(BIN, flags('idle2'), { cwd: second, env });
  expect(r2.code).toBe(0);
  expect(r2.stderr).toBe('');
  expect(r2.stdout).toBe(expected);
  expect(fs.readFileSync(path.join(second, 'address'), 'utf8')).toBe(expected);
  expect(fs.existsSync(path.join(second, 'shim.pid'))).toBe(false);
  expect(fs.readFileSync(trace, 'utf8')).toBe('cold start\nforwarded start\n');

  // An explicit group annotation needs a daemon of its own: the live daemon declines and the front runs the cold path.
  const third = bundle({ 'io.containerd.urunc.v2.group': 'g3' });
  const r3 = await runCmd(BIN, flags('idle3'), { cwd: third, env });
  expect(r3.code, r3.stderr).toBe(0);
  expect(r3.stdout).toBe(socketAddress(grpc, 'itest', 'g3'));
  const daemon3 = Number(fs.readFileSync(path.join(third, 'shim.pid'), 'utf8'));
  expect(daemon3).not.toBe(daemon);
  expect(fs.readFileSync(trace, 'utf8')).toBe('cold start\nforwarded start\ncold start\n');

  // Nobody ever connects with a task and containerd is not there: both daemons leave and remove their sockets.
  for (const pid of [daemon, daemon3]) await waitFor('idle daemon to exit', () => (fs.existsSync(`/proc/${pid}`) ? undefined : true), 15_000);
  expect(fs.existsSync(socketPath(expected))).toBe(false);
  fs.rmSync(trace, { force: true });
});

it('many starts at once with no daemon: one cold start, the rest wait for its daemon and are forwarded', async () => {
  const grpc = path.join(os.tmpdir(), `fake-containerd-storm-${process.pid}.sock`);
  const trace = path.join(os.tmpdir(), `front-trace-storm-${process.pid}`);
  fs.writeFileSync(trace, '');
  const env = { ...process.env, URUNC_SHIM_LINGER_MS: '600000', TTRPC_ADDRESS: `${grpc}.ttrpc`, URUNC_FRONT_TRACE: trace };
  const ids = Array.from({ length: 8 }, (_, i) => `storm${i}`);
  const results = await Promise.all(ids.map((id) =>
    runCmd(BIN, ['-namespace', 'itest', '-address', grpc, '-publish-binary', '/bin/true', '-id', id, 'start'], { cwd: bundle(), env })));
  const expected = socketAddress(grpc, 'itest', NODE_GROUP);
  for (const r of results) {
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected);
  }
  const lines = fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean).sort();
  expect(lines).toEqual(['cold start', ...Array(7).fill('forwarded start')]);
  // The cold start's lock file is gone as soon as it finished (the daemon is still up).
  expect(fs.existsSync(`${socketPath(expected)}.lock`)).toBe(false);
  expect(fs.existsSync(socketPath(expected))).toBe(true);
  await waitFor('idle daemon to exit', () => (fs.existsSync(socketPath(expected)) ? undefined : true), 15_000);
  fs.rmSync(trace, { force: true });
});

it('an upgrade that replaces dist/ under a running daemon: forwarded starts (with options on stdin) still work', async () => {
  // A private copy of the build, so its chunks can be removed as an upgrade with new hashes would.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'upgrade-'));
  dirs.push(root);
  fs.cpSync(path.join(REPO, 'bin'), path.join(root, 'bin'), { recursive: true });
  fs.cpSync(path.join(REPO, 'dist'), path.join(root, 'dist'), { recursive: true });
  // The one module the bundle loads from node_modules (as deploy/install.sh copies it).
  for (const m of ['koffi', '@koromix']) fs.cpSync(path.join(REPO, 'node_modules', m), path.join(root, 'node_modules', m), { recursive: true });
  const bin = path.join(root, 'bin', 'containerd-shim-urunc-v2');
  const grpc = path.join(os.tmpdir(), `fake-containerd-upgrade-${process.pid}.sock`);
  const trace = path.join(root, 'trace');
  const env = { ...process.env, URUNC_SHIM_LINGER_MS: '600000', TTRPC_ADDRESS: `${grpc}.ttrpc`, URUNC_FRONT_TRACE: trace };
  const flags = (id: string) => ['-namespace', 'itest', '-address', grpc, '-publish-binary', '/bin/true', '-id', id, 'start'];
  const r1 = await runCmd(bin, flags('up1'), { cwd: bundle(), env });
  expect(r1.code, r1.stderr).toBe(0);
  // A forwarded start answers once the daemon has loaded and serves.
  expect((await runCmd(bin, flags('up1b'), { cwd: bundle(), env })).code).toBe(0);
  // The chunks a cold process loads lazily are gone now.
  for (const f of fs.readdirSync(path.join(root, 'dist', 'chunks'))) {
    if (/^(bootstrap|runtime-config|start|delete)-/.test(f)) fs.rmSync(path.join(root, 'dist', 'chunks', f));
  }
  // CRI-style options on stdin (a bare Any of runtimeoptions.v1.Options with a config path).
  const cfg = path.join(root, 'urunc.toml');
  fs.writeFileSync(cfg, '[shim]\ngrouping = "node"\n');
  const opts = Options.encode({ typeUrl: '', configPath: cfg, configBody: '' }).finish();
  const any = Any.encode({ typeUrl: 'runtimeoptions.v1.Options', value: opts }).finish();
  const r2 = await runCmd(bin, flags('up2'), { cwd: bundle(), env, input: Buffer.from(any).toString('latin1') });
  expect(r2.code, r2.stderr).toBe(0);
  expect(r2.stdout).toBe(socketAddress(grpc, 'itest', NODE_GROUP));
  expect(fs.readFileSync(trace, 'utf8')).toBe('cold start\nforwarded start\nforwarded start\n');
  await waitFor('idle daemon to exit', () => (fs.existsSync(socketPath(r1.stdout)) ? undefined : true), 15_000);
});

it('fails clearly, with nothing printed on stdout, when a flag is missing', async () => {
  const r = await runCmd(BIN, ['-namespace', 'x', 'start'], { cwd: bundle() });
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/-id and -namespace are required/);
});
