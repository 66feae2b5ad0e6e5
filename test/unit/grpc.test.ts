// The task service over gRPC on the ttrpc socket (src/shim/grpc/server.ts), with grpc-js as the
// client the way containerd's gRPC client calls it: the namespace in `containerd-namespace`
// metadata, unary calls, statuses with their codes; ttrpc keeps working on the same socket.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Code, ShimError } from '../../src/errors.js';
import { GRPC_NAMESPACE_KEY, GrpcServer } from '../../src/shim/grpc/server.js';
import { TtrpcClient } from '../../src/shim/ttrpc/client.js';
import { TtrpcServer, type CallContext, type Handler } from '../../src/shim/ttrpc/server.js';
import { addressFileSocket } from '../../src/shim/address.js';
import { grpcBootstrapFor, parseContainerdVersion } from '../../src/shim/grpc-bootstrap.js';

const SVC = 'containerd.task.v3.Task';
let dir: string;
let sock: string;
let ttrpc: TtrpcServer;
let grpcServer: GrpcServer;
let client: grpc.Client;
let seen: CallContext[];

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grpc-'));
  sock = path.join(dir, 's');
  seen = [];
  const handlers: Record<string, Handler> = {
    Echo: async (ctx, payload) => {
      seen.push(ctx);
      return payload;
    },
    Fail: async (_ctx, payload) => {
      throw new ShimError(Number(Buffer.from(payload).toString()) as Code, 'domain says no');
    },
  };
  ttrpc = new TtrpcServer(pino({ level: 'silent' }));
  grpcServer = new GrpcServer(pino({ level: 'silent' }));
  ttrpc.register(SVC, handlers);
  grpcServer.register(SVC, handlers);
  ttrpc.onHttp2((s, first) => grpcServer.inject(s, first));
  await ttrpc.listen({ path: sock });
  client = new grpc.Client(`unix://${sock}`, grpc.credentials.createInsecure());
});

afterEach(() => {
  client.close();
  grpcServer.close();
  ttrpc.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function call(method: string, payload: Uint8Array, md: Record<string, string> = {}, deadlineMs?: number): Promise<Buffer> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(md)) metadata.set(k, v);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(`/${SVC}/${method}`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(payload), metadata,
      deadlineMs ? { deadline: Date.now() + deadlineMs } : {}, (err, res) => (err ? reject(err) : resolve(res as Buffer)));
  });
}

it('serves unary calls over HTTP/2 on the ttrpc socket, with the namespace from containerd-namespace', async () => {
  const out = await call('Echo', new Uint8Array([1, 2, 3]), { [GRPC_NAMESPACE_KEY]: 'k8s.io', 'x-trace': 'abc' }, 5000);
  expect([...out]).toEqual([1, 2, 3]);
  expect(seen[0]?.namespace).toBe('k8s.io');
  expect(seen[0]?.metadata.get('x-trace')).toEqual(['abc']);
  expect(seen[0]?.deadline).toBeGreaterThan(Date.now());
  expect(seen[0]?.method).toBe('Echo');
  // An empty response body is a valid protobuf message.
  expect((await call('Echo', new Uint8Array())).length).toBe(0);
});

it('keeps serving ttrpc on the same socket, at the same time', async () => {
  const t = await TtrpcClient.connect(sock);
  const [g, r] = await Promise.all([call('Echo', new Uint8Array([9])), t.call(SVC, 'Echo', new Uint8Array([8]))]);
  expect([g[0], r[0]]).toEqual([9, 8]);
  t.close();
});

it.each([
  ['NotFound', Code.NotFound],
  ['FailedPrecondition', Code.FailedPrecondition],
  ['InvalidArgument', Code.InvalidArgument],
])('maps a domain %s error to the same gRPC status code', async (_name, code) => {
  await expect(call('Fail', Buffer.from(String(code)))).rejects.toMatchObject({ code, details: 'domain says no' });
});

it('answers an unknown method with Unimplemented', async () => {
  await expect(call('Nope', new Uint8Array())).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
});

it('start: the bootstrap answer 1.7 accepts for gRPC; 1.6 (no gRPC shims) and 2.x (drops them) are refused', () => {
  expect(parseContainerdVersion('1.6.20~ds1')).toEqual({ major: 1, minor: 6 });
  expect(parseContainerdVersion('v2.1.9')).toEqual({ major: 2, minor: 1 });
  expect(grpcBootstrapFor('1.7.24~ds1', '/run/containerd/s/ab')).toEqual({ version: 2, address: '/run/containerd/s/ab', protocol: 'grpc' });
  expect(() => grpcBootstrapFor('2.1.9+unknown', '/s')).toThrow(/cannot work with containerd 2.1.9\+unknown: it treats a gRPC shim as disconnected/);
  expect(() => grpcBootstrapFor('1.6.20~ds1', '/s')).toThrow(/needs containerd 1.7 or later; this is containerd 1.6.20~ds1/);
  expect(() => grpcBootstrapFor('dev', '/s')).toThrow(/cannot tell the version/);
});

it('the bundle\'s address file names the socket in either form', () => {
  expect(addressFileSocket('unix:///run/containerd/s/ab\n')).toBe('unix:///run/containerd/s/ab');
  expect(addressFileSocket('{"version":3,"address":"/run/containerd/s/ab","protocol":"grpc"}')).toBe('unix:///run/containerd/s/ab');
  expect(addressFileSocket('{"address":"relative"}')).toBeUndefined();
  expect(addressFileSocket('garbage')).toBeUndefined();
});
