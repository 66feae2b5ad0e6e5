// A minimal gRPC client for containerd's main socket over node:http2 (unary and server-streaming
// calls, the `containerd-namespace` header). The shim needs a handful of calls per container, on
// the Create path, so this avoids loading a full gRPC stack into the daemon.
import http2 from 'node:http2';
import net from 'node:net';
import { Code, ShimError } from '../errors.js';

export interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
}

export class ContainerdGrpc {
  private session: http2.ClientHttp2Session | undefined;
  /** Calls in flight: the session keeps the process alive only while there are some. */
  private pending = 0;

  constructor(private readonly socket: string, private readonly timeoutMs = 10_000) {}

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const s = http2.connect('http://localhost', { createConnection: () => net.connect(this.socket) });
    s.on('error', () => undefined);
    s.unref();
    this.session = s;
    return s;
  }

  /** Every response message of one call (one for unary calls). */
  async call<Req, Res>(namespace: string, method: string, req: Req, reqCodec: Codec<Req>, resCodec: Codec<Res>, headers: Record<string, string> = {}): Promise<Res[]> {
    const body = reqCodec.encode(req).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const session = this.connect();
    if (this.pending++ === 0) session.ref();
    try {
      return await this.exchange(session, method, frame, namespace, headers, resCodec);
    } finally {
      if (--this.pending === 0) session.unref();
    }
  }

  private async exchange<Res>(session: http2.ClientHttp2Session, method: string, frame: Buffer, namespace: string, headers: Record<string, string>, resCodec: Codec<Res>): Promise<Res[]> {
    const stream = session.request({
      ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers', 'containerd-namespace': namespace, ...headers,
    });
    stream.setTimeout(this.timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.end(frame);
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    await new Promise<void>((resolve, reject) => {
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      });
      stream.on('trailers', (h) => {
        status = String(h['grpc-status'] ?? status ?? '');
        message = decodeURIComponent(String(h['grpc-message'] ?? message));
      });
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('error', reject);
      stream.on('close', () => resolve());
    });
    if (status === undefined) throw new ShimError(Code.Unavailable, `${method}: no status from containerd`);
    if (status !== '0') throw new ShimError(Number(status) as Code, `${method}: ${message}`);
    const data = Buffer.concat(chunks);
    const out: Res[] = [];
    for (let off = 0; off + 5 <= data.length;) {
      const len = data.readUInt32BE(off + 1);
      out.push(resCodec.decode(data.subarray(off + 5, off + 5 + len)));
      off += 5 + len;
    }
    return out;
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
  }
}

const clients = new Map<string, ContainerdGrpc>();

/** The one client per containerd socket in this process (`unix://` prefix optional), shared by every caller. */
export function containerdGrpc(address: string): ContainerdGrpc {
  const socket = address.replace(/^unix:\/\//, '');
  let c = clients.get(socket);
  if (!c) clients.set(socket, (c = new ContainerdGrpc(socket)));
  return c;
}
