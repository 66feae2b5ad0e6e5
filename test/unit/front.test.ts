// The native front (bin/containerd-shim-urunc-v2, built from native/front.c) against a server
// speaking the daemon's side (src/shim/front.ts) on a TtrpcServer: the front must find the socket
// the TypeScript derives (SHA-256 over a multi-block key), forward argv, cwd, environment and
// stdin intact, print the reply's stdout/stderr and exit with its code, and run the cold path
// when the daemon declines or is absent. Plus the codec's refusals.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { NODE_GROUP, socketAddress, socketPath } from '../../src/shim/address.js';
import { FRONT_MAGIC, decodeFrontRequest, encodeFrontReply, serveFront, startExpired, type FrontRequest } from '../../src/shim/front.js';
import { TtrpcServer } from '../../src/shim/ttrpc/server.js';
import { REPO, runCmd } from '../e2e/containerd.js';

const BIN = path.join(REPO, 'bin', 'containerd-shim-urunc-v2');
let dir: string;
let server: TtrpcServer;
let seen: FrontRequest[];
let reply: Buffer | undefined;
// A long containerd address: the hashed key spans several SHA-256 blocks.
const address = `/tmp/${'a'.repeat(90)}/${'b'.repeat(40)}/containerd.sock`;
const sock = socketPath(socketAddress(address, 'front-ns', NODE_GROUP));

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'front-'));
  seen = [];
  server = new TtrpcServer(pino({ level: 'silent' }));
  server.onForeign((s, first) => serveFront(s, first, async (req) => {
    seen.push(req);
    // No reply set: a hung daemon that never answers.
    return reply ?? new Promise<Buffer>(() => undefined);
  }));
  fs.mkdirSync(path.dirname(sock), { recursive: true });
  fs.rmSync(sock, { force: true });
  await server.listen({ path: sock });
});

afterEach(() => {
  server.close();
  fs.rmSync(sock, { force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

const args = (action: string) => ['-namespace', 'front-ns', '-address', address, '-publish-binary', '/bin/true', '-id', 'c1', '-debug', action];

it('forwards start with argv, cwd, environment and stdin, and replays the reply', async () => {
  reply = encodeFrontReply(0, Buffer.from('unix:///run/x'), Buffer.alloc(0));
  const stdin = Buffer.from([0x0a, 0x00, 0xff, 0x10]).toString('latin1');
  const r = await runCmd(BIN, args('start'), { cwd: dir, env: { ...process.env, FRONT_TEST: 'a=b c' }, input: stdin });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('unix:///run/x');
  expect(seen).toHaveLength(1);
  const req = seen[0] as FrontRequest;
  expect(req.args).toEqual(args('start'));
  expect(req.cwd).toBe(fs.realpathSync(dir));
  expect(req.env.FRONT_TEST).toBe('a=b c');
  expect(req.stdin.length).toBeGreaterThan(0);
});

it('delete: stdout bytes, stderr text and the exit code come from the reply; stdin is not read', async () => {
  reply = encodeFrontReply(3, Buffer.from([0x10, 0x89, 0x01, 0x00]), Buffer.from('warn: x\n'));
  const r = await runCmd(BIN, args('delete'), { cwd: dir });
  expect(r.code).toBe(3);
  expect([...r.stdoutBytes]).toEqual([0x10, 0x89, 0x01, 0x00]);
  expect(r.stderr).toBe('warn: x\n');
  expect(seen[0]?.stdin.length).toBe(0);
});

it('declined (-1) or no daemon: the cold path runs node on the bundle', async () => {
  const trace = path.join(dir, 'trace');
  reply = encodeFrontReply(-1, Buffer.alloc(0), Buffer.alloc(0));
  // The cold `delete` of a bundle that holds nothing succeeds and prints a DeleteResponse.
  const env = { ...process.env, URUNC_FRONT_TRACE: trace };
  const declined = await runCmd(BIN, [...args('delete').slice(0, -1), '-bundle', dir, 'delete'], { cwd: dir, env });
  expect(declined.code, declined.stderr).toBe(0);
  expect(declined.stdoutBytes.includes(Buffer.from([0x10, 0x89, 0x01]))).toBe(true);
  expect(seen).toHaveLength(1);
  server.close();
  fs.rmSync(sock, { force: true });
  const absent = await runCmd(BIN, ['-v'], { env });
  expect(absent.code).toBe(0);
  expect(absent.stdout).toMatch(/containerd-shim-urunc-v2/);
  expect(fs.readFileSync(trace, 'utf8')).toBe('cold delete\ncold -\n');
});

it('a daemon that does not answer a delete in 3.5 s counts as absent: the cold delete runs in time for containerd\'s 5 s', async () => {
  const trace = path.join(dir, 'trace');
  reply = undefined;
  const r = await runCmd(BIN, [...args('delete').slice(0, -1), '-bundle', dir, 'delete'], { cwd: dir, env: { ...process.env, URUNC_FRONT_TRACE: trace } });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdoutBytes.includes(Buffer.from([0x10, 0x89, 0x01]))).toBe(true);
  expect(seen).toHaveLength(1);
  expect(fs.readFileSync(trace, 'utf8')).toBe('cold delete\n');
});

it('a daemon that does not answer a start in 2.5 s is routed around: the container gets a daemon of its own group, and containerd\'s log says why', async () => {
  const trace = path.join(dir, 'trace');
  reply = undefined;
  // containerd's shim log: a fifo it reads from; a regular file stands in for it here.
  fs.writeFileSync(path.join(dir, 'log'), '');
  const t0 = Date.now();
  const r = await runCmd(BIN, args('start'), { cwd: dir, env: { ...process.env, URUNC_FRONT_TRACE: trace, URUNC_SHIM_LINGER_MS: '0' } });
  const daemon = Number(fs.readFileSync(path.join(dir, 'shim.pid'), 'utf8'));
  try {
    expect(r.code, r.stderr).toBe(0);
    // The pod grouping's socket for a lone container: its own id.
    expect(r.stdout).toBe(socketAddress(address, 'front-ns', 'c1'));
    expect(r.stderr).toBe('');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
    expect(fs.readFileSync(trace, 'utf8')).toBe('routed start\ncold start\n');
    expect(fs.readFileSync(path.join(dir, 'log'), 'utf8')).toMatch(/did not answer a start in 2\.5 s .*a daemon of its own group/);
    // The stuck daemon got the request with its deadline, and declines it when it reaches it late.
    const req = seen[0] as FrontRequest;
    expect(Number(req.env.URUNC_FRONT_DEADLINE_MS)).toBeGreaterThan(t0);
    expect(startExpired(req.env)).toBe(true);
    expect(startExpired(req.env, Number(req.env.URUNC_FRONT_DEADLINE_MS) - 1)).toBe(false);
    expect(startExpired({})).toBe(false);
  } finally {
    try {
      process.kill(daemon, 'SIGKILL');
    } catch {
      // gone
    }
    fs.rmSync(socketPath(socketAddress(address, 'front-ns', 'c1')), { force: true });
  }
}, 20_000);

it('the codec refuses a bad magic, truncated fields and trailing bytes', () => {
  const field = (b: Buffer) => Buffer.concat([u32(b.length), b]);
  const good = Buffer.concat([FRONT_MAGIC, u32(3), field(Buffer.from('/b')), field(Buffer.alloc(0)), field(Buffer.from('Astart'))]);
  expect(decodeFrontRequest(good)).toMatchObject({ cwd: '/b', args: ['start'] });
  expect(() => decodeFrontRequest(Buffer.concat([Buffer.from('URF2'), good.subarray(4)]))).toThrow(/magic/);
  expect(() => decodeFrontRequest(good.subarray(0, good.length - 2))).toThrow(/truncated/);
  expect(() => decodeFrontRequest(Buffer.concat([good, Buffer.from([0])]))).toThrow(/malformed/);
  expect(() => decodeFrontRequest(Buffer.concat([FRONT_MAGIC, u32(3), field(Buffer.from('/b')), field(Buffer.alloc(0)), field(Buffer.from('Xoops'))]))).toThrow(/unknown field/);
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
