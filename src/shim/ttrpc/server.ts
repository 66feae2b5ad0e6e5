// ttrpc server over unix sockets. Each request is handled concurrently (Wait blocks for the life
// of a task on a shared connection) and answered on its own stream id, possibly out of order.
// Protocol faults are answered per stream where the stream is known; a connection is closed only
// when its byte stream can no longer be trusted. Domain errors become statuses here and nowhere else.
import net from 'node:net';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { Request, Response } from '../../gen/ttrpc/request.js';
import { Code, ShimError, codeOf, messageOf } from '../../errors.js';
import { FrameReader, MessageType, encodeFrame } from './frame.js';

export interface CallContext {
  service: string;
  method: string;
  /** containerd namespace from `containerd-namespace-ttrpc` metadata, if sent. */
  namespace: string | undefined;
  metadata: Map<string, string[]>;
  /** Absolute deadline in ms since the epoch, or undefined for none. */
  deadline: number | undefined;
}

export type Handler = (ctx: CallContext, payload: Uint8Array) => Promise<Uint8Array>;

export interface MethodCodec<Req, Res> {
  decode(input: Uint8Array): Req;
  encode(res: Res): { finish(): Uint8Array };
}

/** Wraps a typed implementation with its generated decoder/encoder. Decode failures are InvalidArgument. */
export function method<Req, Res>(
  req: { decode(input: Uint8Array): Req },
  res: { encode(message: Res): { finish(): Uint8Array } },
  impl: (ctx: CallContext, request: Req) => Promise<Res>,
): Handler {
  return async (ctx, payload) => {
    let decoded: Req;
    try {
      decoded = req.decode(payload);
    } catch (err: unknown) {
      throw new ShimError(Code.InvalidArgument, `unmarshal request: ${messageOf(err)}`, { cause: err });
    }
    return res.encode(await impl(ctx, decoded)).finish();
  };
}

export const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

/**
 * The status code a handler's failure is answered with (ttrpc's codes are gRPC's), logged as an
 * error when it is a bug (Unknown, Internal) and at debug level when it is the domain's answer.
 */
export function logCallError(log: Logger, transport: 'ttrpc' | 'grpc', err: unknown, service: string, method: string): Code {
  const code = codeOf(err);
  if (code === Code.Unknown || code === Code.Internal) log.error({ err, service, method }, `${transport} call failed`);
  else log.debug({ err: messageOf(err), code, method }, `${transport} call returned error`);
  return code;
}

/**
 * A service's handlers, loaded at its first call (the module behind them is not loaded until a
 * client uses the service); a failed load is retried at the next call.
 */
export function lazyHandlers(names: readonly string[], load: () => Promise<Record<string, Handler>>): Record<string, Handler> {
  let loaded: Promise<Record<string, Handler>> | undefined;
  const get = (): Promise<Record<string, Handler>> => {
    loaded ??= load().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  };
  return Object.fromEntries(names.map((name): [string, Handler] => [name, async (ctx, payload) => {
    const h = (await get())[name];
    if (!h) throw new ShimError(Code.Unimplemented, `method ${name}`);
    return h(ctx, payload);
  }]));
}

export class TtrpcServer {
  private readonly services = new Map<string, Map<string, Handler>>();
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private inflight = 0;
  private foreign: ((sock: net.Socket, first: Buffer) => void) | undefined;
  private http2: ((sock: net.Socket, first: Buffer) => void) | undefined;

  constructor(private readonly log: Logger) {}

  /**
   * Hands connections that begin with 'U' to another protocol on the same socket (the native
   * front's requests): a ttrpc frame begins with its length, below 4 MiB, so with a 0 byte.
   */
  /** Told of every call as it starts (the event-loop watchdog's "what was the loop doing"). */
  onCall: ((ctx: CallContext) => void) | undefined;

  onForeign(handler: (sock: net.Socket, first: Buffer) => void): void {
    this.foreign = handler;
  }

  /** Hands connections that begin with the HTTP/2 client preface ('P' of "PRI * HTTP/2.0") to gRPC. */
  onHttp2(handler: (sock: net.Socket, first: Buffer) => void): void {
    this.http2 = handler;
  }

  register(service: string, methods: Record<string, Handler>): void {
    this.services.set(service, new Map(Object.entries(methods)));
  }

  /** Serves on an already-listening fd (handed over by `start`) or on a fresh path (mode 0600). */
  async listen(target: { fd: number } | { path: string }): Promise<net.Server> {
    // Half-open allowed: a front client shuts down its side after its request and waits for the reply.
    const server = net.createServer({ allowHalfOpen: true }, (sock) => this.accept(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(target, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if ('path' in target) fs.chmodSync(target.path, 0o600);
    server.on('error', (err) => this.log.error({ err }, 'ttrpc listener error'));
    this.servers.push(server);
    return server;
  }

  get connections(): number {
    return this.conns.size;
  }

  get activeCalls(): number {
    return this.inflight;
  }

  close(): void {
    for (const s of this.servers) s.close();
    for (const c of this.conns) c.destroy();
  }

  private accept(sock: net.Socket): void {
    this.conns.add(sock);
    const reader = new FrameReader();
    let lastStream = 0;
    const send = (streamId: number, res: Response): void => {
      if (sock.destroyed) return;
      let body = Response.encode(res).finish();
      if (body.length > (4 << 20)) {
        body = Response.encode({ status: { code: Code.ResourceExhausted, message: 'response exceeds 4 MiB', details: [] }, payload: new Uint8Array() }).finish();
      }
      sock.write(encodeFrame(streamId, MessageType.Response, 0, body));
    };
    const fail = (streamId: number, code: Code, message: string): void =>
      send(streamId, { status: { code, message, details: [] }, payload: new Uint8Array() });

    let first = true;
    const onData = (data: Buffer): void => {
      if (first) {
        first = false;
        // 'U' of the front's magic, 'P' of HTTP/2's preface: never a ttrpc frame's first byte.
        const other = data[0] === 0x55 ? this.foreign : data[0] === 0x50 ? this.http2 : undefined;
        if (other) {
          sock.off('data', onData);
          sock.off('end', onEnd);
          sock.pause();
          // A gRPC client is not a sign of work: containerd 1.7's clients of a killed daemon reconnect
          // to the next one at the same path and stay, so only gRPC calls in flight count (serve.ts).
          if (other === this.http2) this.conns.delete(sock);
          other(sock, data);
          return;
        }
      }
      for (const f of reader.push(data)) {
        if ('oversize' in f) {
          fail(f.streamId, Code.ResourceExhausted, `message length ${f.length} exceeds maximum message size of ${4 << 20}`);
          continue;
        }
        if (f.type !== MessageType.Request) {
          // Data frames belong to streams, which this server does not offer; anything else is noise.
          if (f.type === MessageType.Data) fail(f.streamId, Code.Unimplemented, 'streaming is not supported');
          else this.log.warn({ type: f.type, streamId: f.streamId }, 'ttrpc: dropping frame of unknown type');
          continue;
        }
        if (f.streamId % 2 === 0) {
          fail(f.streamId, Code.InvalidArgument, 'StreamID must be odd for client initiated streams');
          continue;
        }
        if (f.streamId <= lastStream) {
          fail(f.streamId, Code.InvalidArgument, 'StreamID cannot be re-used and must increment');
          continue;
        }
        lastStream = f.streamId;
        this.dispatch(f.streamId, f.payload, send, fail);
      }
    };
    const onEnd = (): void => void sock.end();
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', (err) => this.log.debug({ err }, 'ttrpc connection error'));
    sock.on('close', () => {
      this.conns.delete(sock);
      if (reader.pending > 0) this.log.debug({ bytes: reader.pending }, 'ttrpc: connection closed inside a frame');
    });
  }

  private dispatch(
    streamId: number,
    payload: Buffer,
    send: (id: number, res: Response) => void,
    fail: (id: number, code: Code, message: string) => void,
  ): void {
    let req: Request;
    try {
      req = Request.decode(payload);
    } catch (err: unknown) {
      fail(streamId, Code.InvalidArgument, `unmarshal request error: ${messageOf(err)}`);
      return;
    }
    const svc = this.services.get(req.service);
    if (!svc) {
      fail(streamId, Code.Unimplemented, `service ${req.service}`);
      return;
    }
    const handler = svc.get(req.method);
    if (!handler) {
      fail(streamId, Code.Unimplemented, `method ${req.method}`);
      return;
    }
    const metadata = new Map<string, string[]>();
    for (const kv of req.metadata) {
      const key = kv.key.toLowerCase();
      metadata.set(key, [...(metadata.get(key) ?? []), kv.value]);
    }
    const timeout = req.timeoutNano > 0n ? Number(req.timeoutNano / 1_000_000n) : undefined;
    const ctx: CallContext = {
      service: req.service,
      method: req.method,
      namespace: metadata.get(NAMESPACE_KEY)?.[0],
      metadata,
      deadline: timeout !== undefined ? Date.now() + timeout : undefined,
    };
    this.inflight++;
    this.onCall?.(ctx);
    handler(ctx, req.payload).then(
      (out) => send(streamId, { status: undefined, payload: out }),
      (err: unknown) => fail(streamId, logCallError(this.log, 'ttrpc', err, req.service, req.method), messageOf(err)),
    ).finally(() => {
      this.inflight--;
    });
  }
}
