// ttrpc server and client over real unix sockets: framing, concurrency, status codes, and
// hostile input. After every fault the server must still answer a valid call.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, ShimError } from '../../src/errors.js';
import { Request, Response } from '../../src/gen/ttrpc/request.js';
import { FrameReader, MESSAGE_LENGTH_MAX, MessageType, encodeFrame } from '../../src/shim/ttrpc/frame.js';
import { TtrpcClient } from '../../src/shim/ttrpc/client.js';
import { NAMESPACE_KEY, TtrpcServer, type CallContext } from '../../src/shim/ttrpc/server.js';

const SVC = 'test.v1.Echo';
let dir: string;
let sock: string;
let server: TtrpcServer;
let release: () => void;
let seen: CallContext[];

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ttrpc-'));
  sock = path.join(dir, 's');
  seen = [];
  server = new TtrpcServer(pino({ level: 'silent' }));
  let gate!: () => void;
  const blocked = new Promise<void>((r) => (gate = r));
  release = gate;
  server.register(SVC, {
    Echo: async (ctx, payload) => {
      seen.push(ctx);
      return payload;
    },
    Block: async () => {
      await blocked;
      return new Uint8Array([7]);
    },
    Fail: async (_ctx, payload) => {
      throw new ShimError(Number(Buffer.from(payload).toString()) as Code, 'domain says no');
    },
    Crash: async () => {
      throw new TypeError('internal bug');
    },
  });
  await server.listen({ path: sock });
});

afterEach(() => {
  release();
  server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A raw connection for sending hand-made bytes and reading framed responses. */
async function raw(): Promise<{ sock: net.Socket; next(): Promise<{ streamId: number; res: Response }>; closed: Promise<void> }> {
  const s = net.createConnection({ path: sock });
  await new Promise((r) => s.once('connect', r));
  const reader = new FrameReader();
  const frames: Array<{ streamId: number; res: Response }> = [];
  const waiters: Array<(f: { streamId: number; res: Response }) => void> = [];
  s.on('data', (d: Buffer) => {
    for (const f of reader.push(d)) {
      if ('oversize' in f) continue;
      const item = { streamId: f.streamId, res: Response.decode(f.payload) };
      const w = waiters.shift();
      if (w) w(item);
      else frames.push(item);
    }
  });
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  return {
    sock: s,
    closed,
    next: () => {
      const f = frames.shift();
      if (f) return Promise.resolve(f);
      return new Promise((r, j) => {
        waiters.push(r);
        setTimeout(() => j(new Error('no response')), 3000);
      });
    },
  };
}

function request(method: string, payload: Uint8Array = new Uint8Array([1, 2, 3]), service = SVC): Uint8Array {
  return Request.encode({ service, method, payload, timeoutNano: 0n, metadata: [] }).finish();
}

async function stillServes(): Promise<void> {
  const c = await TtrpcClient.connect(sock);
  try {
    expect(Buffer.from(await c.call(SVC, 'Echo', new Uint8Array([9, 9])))).toEqual(Buffer.from([9, 9]));
  } finally {
    c.close();
  }
}

describe('frame reader', () => {
  it('reassembles frames split at every byte boundary and packed together', () => {
    const a = encodeFrame(1, MessageType.Request, 0, Buffer.from('hello'));
    const b = encodeFrame(3, MessageType.Request, 0, Buffer.alloc(0));
    const all = Buffer.concat([a, b]);
    for (let cut = 0; cut <= all.length; cut++) {
      const r = new FrameReader();
      const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))];
      expect(got.map((f) => ('payload' in f ? [f.streamId, f.payload.toString()] : null))).toEqual([[1, 'hello'], [3, '']]);
      expect(r.pending).toBe(0);
    }
  });

  it('reports an oversize frame once and skips its body across chunks', () => {
    const r = new FrameReader();
    const head = Buffer.alloc(10);
    head.writeUInt32BE(MESSAGE_LENGTH_MAX + 1, 0);
    head.writeUInt32BE(5, 4);
    head.writeUInt8(1, 8);
    expect(r.push(head)).toEqual([{ streamId: 5, type: 1, length: MESSAGE_LENGTH_MAX + 1, oversize: true }]);
    expect(r.push(Buffer.alloc(MESSAGE_LENGTH_MAX))).toEqual([]);
    const tail = Buffer.concat([Buffer.alloc(1), encodeFrame(7, 1, 0, Buffer.from('x'))]);
    const got = r.push(tail);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ streamId: 7 });
  });
});

describe('ttrpc server', () => {
  it('answers concurrent calls on one connection out of order while one blocks', async () => {
    const c = await TtrpcClient.connect(sock);
    const blocked = c.call(SVC, 'Block', new Uint8Array());
    const quick = await Promise.all([1, 2, 3].map((i) => c.call(SVC, 'Echo', new Uint8Array([i]))));
    expect(quick.map((b) => b[0])).toEqual([1, 2, 3]);
    release();
    expect((await blocked)[0]).toBe(7);
    c.close();
  });

  it('serves many connections at once', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => TtrpcClient.connect(sock)));
    const out = await Promise.all(clients.map((c, i) => c.call(SVC, 'Echo', new Uint8Array([i]))));
    expect(out.map((b) => b[0])).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const c of clients) c.close();
  });

  it('passes the containerd namespace and lower-cased metadata to handlers', async () => {
    const c = await TtrpcClient.connect(sock);
    await c.call(SVC, 'Echo', new Uint8Array(), { metadata: { [NAMESPACE_KEY]: 'k8s.io', 'X-Trace': 'abc' }, timeoutMs: 2000 });
    expect(seen[0]?.namespace).toBe('k8s.io');
    expect(seen[0]?.metadata.get('x-trace')).toEqual(['abc']);
    expect(seen[0]?.deadline).toBeGreaterThan(Date.now());
    c.close();
  });

  it.each([
    ['NotFound', Code.NotFound],
    ['AlreadyExists', Code.AlreadyExists],
    ['FailedPrecondition', Code.FailedPrecondition],
    ['InvalidArgument', Code.InvalidArgument],
    ['Unimplemented', Code.Unimplemented],
  ])('maps a domain %s error to its status code', async (_name, code) => {
    const c = await TtrpcClient.connect(sock);
    await expect(c.call(SVC, 'Fail', Buffer.from(String(code)))).rejects.toMatchObject({ code, message: 'domain says no' });
    c.close();
  });

  it('turns an unexpected exception into Unknown with its message', async () => {
    const c = await TtrpcClient.connect(sock);
    await expect(c.call(SVC, 'Crash', new Uint8Array())).rejects.toMatchObject({ code: Code.Unknown });
    c.close();
    await stillServes();
  });

  it('answers an unknown service and method with Unimplemented', async () => {
    const c = await TtrpcClient.connect(sock);
    await expect(c.call('no.such.Service', 'Echo', new Uint8Array())).rejects.toMatchObject({ code: Code.Unimplemented, message: 'service no.such.Service' });
    await expect(c.call(SVC, 'Nope', new Uint8Array())).rejects.toMatchObject({ code: Code.Unimplemented, message: 'method Nope' });
    c.close();
  });

  it('rejects an even stream id with InvalidArgument and keeps the connection', async () => {
    const r = await raw();
    r.sock.write(encodeFrame(2, MessageType.Request, 0, request('Echo')));
    const f = await r.next();
    expect(f.streamId).toBe(2);
    expect(f.res.status?.code).toBe(Code.InvalidArgument);
    expect(f.res.status?.message).toMatch(/must be odd/);
    r.sock.write(encodeFrame(3, MessageType.Request, 0, request('Echo')));
    expect((await r.next()).res.status).toBeUndefined();
    r.sock.destroy();
  });

  it('rejects a reused or decreasing stream id', async () => {
    const r = await raw();
    r.sock.write(encodeFrame(5, MessageType.Request, 0, request('Echo')));
    expect((await r.next()).res.status).toBeUndefined();
    r.sock.write(encodeFrame(5, MessageType.Request, 0, request('Echo')));
    expect((await r.next()).res.status?.code).toBe(Code.InvalidArgument);
    r.sock.write(encodeFrame(3, MessageType.Request, 0, request('Echo')));
    const f = await r.next();
    expect(f.res.status?.message).toMatch(/re-used/);
    r.sock.destroy();
    await stillServes();
  });

  it('answers garbage protobuf with InvalidArgument on that stream', async () => {
    const r = await raw();
    r.sock.write(encodeFrame(1, MessageType.Request, 0, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
    const f = await r.next();
    expect(f.streamId).toBe(1);
    expect(f.res.status?.code).toBe(Code.InvalidArgument);
    r.sock.destroy();
    await stillServes();
  });

  it('answers an oversize frame with ResourceExhausted, skips its body, and keeps going', async () => {
    const r = await raw();
    const head = Buffer.alloc(10);
    head.writeUInt32BE(MESSAGE_LENGTH_MAX + 10, 0);
    head.writeUInt32BE(1, 4);
    head.writeUInt8(MessageType.Request, 8);
    r.sock.write(head);
    const f = await r.next();
    expect(f.streamId).toBe(1);
    expect(f.res.status?.code).toBe(Code.ResourceExhausted);
    r.sock.write(Buffer.alloc(MESSAGE_LENGTH_MAX + 10));
    r.sock.write(encodeFrame(3, MessageType.Request, 0, request('Echo')));
    const g = await r.next();
    expect(g.streamId).toBe(3);
    expect(g.res.status).toBeUndefined();
    r.sock.destroy();
  });

  it('survives a connection closed inside a header and inside a body', async () => {
    const a = await raw();
    a.sock.end(Buffer.from([0, 0, 0]));
    await a.closed;
    const b = await raw();
    b.sock.end(encodeFrame(1, MessageType.Request, 0, request('Echo')).subarray(0, 14));
    await b.closed;
    await stillServes();
  });

  it('ignores frames of unknown type and answers data frames with Unimplemented', async () => {
    const r = await raw();
    r.sock.write(encodeFrame(1, 9, 0, Buffer.from('junk')));
    r.sock.write(encodeFrame(3, MessageType.Data, 0, Buffer.from('junk')));
    const f = await r.next();
    expect(f.streamId).toBe(3);
    expect(f.res.status?.code).toBe(Code.Unimplemented);
    r.sock.write(encodeFrame(5, MessageType.Request, 0, request('Echo')));
    expect((await r.next()).streamId).toBe(5);
    r.sock.destroy();
  });

  it('client: a call on a closed connection fails with Unavailable, pending calls too', async () => {
    const c = await TtrpcClient.connect(sock);
    const pending = c.call(SVC, 'Block', new Uint8Array());
    server.close();
    await expect(pending).rejects.toMatchObject({ code: Code.Unavailable });
    await expect(c.call(SVC, 'Echo', new Uint8Array())).rejects.toMatchObject({ code: Code.Unavailable });
  });
});
