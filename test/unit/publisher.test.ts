// Event forwarding against a real ttrpc server standing in for containerd's Events service:
// order is kept, type URLs are bare, failures are retried on a fresh connection.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { Code, ShimError } from '../../src/errors.js';
import { ForwardRequest } from '../../src/gen/containerd/services/events/ttrpc.js';
import { Publisher } from '../../src/shim/publisher.js';
import { TtrpcServer, type CallContext } from '../../src/shim/ttrpc/server.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** containerd's Events.Forward stand-in on a real socket, and a publisher pointed at it. */
async function eventsServer(forward: (ctx: CallContext, payload: Uint8Array) => Promise<Uint8Array>): Promise<Publisher> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pub-'));
  const sock = path.join(dir, 'containerd.sock.ttrpc');
  const server = new TtrpcServer(pino({ level: 'silent' }));
  server.register('containerd.services.events.ttrpc.v1.Events', { Forward: forward });
  await server.listen({ path: sock });
  const pub = new Publisher(sock, pino({ level: 'silent' }));
  cleanups.push(() => {
    pub.close();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return pub;
}

it('forwards events in order with bare type URLs, retrying failed calls', async () => {
  const got: Array<{ topic: string; ns: string; typeUrl: string; ctxNs: string | undefined }> = [];
  let failures = 2;
  const pub = await eventsServer(async (ctx, payload) => {
    if (failures-- > 0) throw new ShimError(Code.Unavailable, 'containerd is restarting');
    const env = ForwardRequest.decode(payload).envelope;
    got.push({ topic: env?.topic ?? '', ns: env?.namespace ?? '', typeUrl: env?.event?.typeUrl ?? '', ctxNs: ctx.namespace });
    expect(env?.timestamp?.seconds).toBeGreaterThan(0n);
    return new Uint8Array();
  });
  pub.publish('k8s.io', { topic: '/tasks/create', containerId: 'c', bundle: '/b', rootfs: [], io: { stdin: '', stdout: '', stderr: '', terminal: false }, checkpoint: '', pid: 1 });
  pub.publish('k8s.io', { topic: '/tasks/start', containerId: 'c', pid: 1 });
  pub.publish('k8s.io', { topic: '/tasks/exit', containerId: 'c', id: 'c', pid: 1, exitStatus: 0, exitedAt: new Date() });
  await pub.drain(10_000);
  expect(got).toEqual([
    { topic: '/tasks/create', ns: 'k8s.io', typeUrl: 'containerd.events.TaskCreate', ctxNs: 'k8s.io' },
    { topic: '/tasks/start', ns: 'k8s.io', typeUrl: 'containerd.events.TaskStart', ctxNs: 'k8s.io' },
    { topic: '/tasks/exit', ns: 'k8s.io', typeUrl: 'containerd.events.TaskExit', ctxNs: 'k8s.io' },
  ]);
});

it('drops an event after five failed attempts and goes on with the next', async () => {
  let calls = 0;
  const delivered: string[] = [];
  const pub = await eventsServer(async (_ctx, payload) => {
    calls++;
    if (calls <= 5) throw new ShimError(Code.Unavailable, 'down');
    delivered.push(ForwardRequest.decode(payload).envelope?.topic ?? '');
    return new Uint8Array();
  });
  pub.publish('default', { topic: '/tasks/start', containerId: 'c', pid: 1 });
  pub.publish('default', { topic: '/tasks/paused', containerId: 'c' });
  await pub.drain(15_000);
  expect(calls).toBe(6);
  expect(delivered).toEqual(['/tasks/paused']);
});
