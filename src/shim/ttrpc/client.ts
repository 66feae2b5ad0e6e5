// ttrpc client over a unix socket: odd, increasing stream ids; calls multiplexed on one connection.
// Used to forward events to containerd and by the tests.
import net from 'node:net';
import { Request, Response } from '../../gen/ttrpc/request.js';
import { Code, ShimError } from '../../errors.js';
import { FrameReader, MessageType, encodeFrame } from './frame.js';

export interface CallOptions {
  timeoutMs?: number;
  metadata?: Record<string, string>;
}

export class TtrpcClient {
  private nextStream = 1;
  private readonly pending = new Map<number, { resolve(b: Uint8Array): void; reject(e: Error): void }>();
  private readonly reader = new FrameReader();
  private closedErr: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (err) => this.shut(err));
    sock.on('close', () => this.shut(new ShimError(Code.Unavailable, 'ttrpc: closed')));
  }

  /** Accepts a plain path or a `unix://` address. */
  static connect(address: string, timeoutMs = 5000): Promise<TtrpcClient> {
    const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ path });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new ShimError(Code.DeadlineExceeded, `ttrpc: connect ${path} timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new TtrpcClient(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get closed(): boolean {
    return this.closedErr !== undefined;
  }

  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    if (this.closedErr) return Promise.reject(this.closedErr);
    const id = this.nextStream;
    this.nextStream += 2;
    const req = Request.encode({
      service,
      method,
      payload,
      timeoutNano: opts.timeoutMs ? BigInt(opts.timeoutMs) * 1_000_000n : 0n,
      metadata: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    }).finish();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new ShimError(Code.DeadlineExceeded, `ttrpc: ${method} timed out`));
        }, opts.timeoutMs);
      }
      this.pending.set(id, {
        resolve: (b) => {
          clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.sock.write(encodeFrame(id, MessageType.Request, 0, req));
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(d: Buffer): void {
    for (const f of this.reader.push(d)) {
      const p = this.pending.get(f.streamId);
      if (!p) continue;
      this.pending.delete(f.streamId);
      if ('oversize' in f) {
        p.reject(new ShimError(Code.ResourceExhausted, 'ttrpc: response too large'));
        continue;
      }
      let res: Response;
      try {
        res = Response.decode(f.payload);
      } catch (err: unknown) {
        p.reject(new ShimError(Code.Internal, 'ttrpc: bad response', { cause: err }));
        continue;
      }
      if (res.status && res.status.code !== 0) {
        p.reject(new ShimError(res.status.code as Code, res.status.message));
      } else {
        p.resolve(res.payload);
      }
    }
  }

  private shut(err: Error): void {
    if (this.closedErr) return;
    this.closedErr = err instanceof ShimError ? err : new ShimError(Code.Unavailable, `ttrpc: ${err.message}`, { cause: err });
    for (const p of this.pending.values()) p.reject(this.closedErr);
    this.pending.clear();
  }
}
