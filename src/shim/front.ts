// The daemon's side of the native front (native/front.c): one forwarded `start` or `delete` per
// connection on the daemon's own socket, told apart from ttrpc by its first bytes ("URF1"; a
// ttrpc frame begins with a length below 4 MiB, so its first byte is 0). The action runs the same
// code as in a cold process, with the invocation's cwd, environment and stdin, and its output
// goes back as one reply: "URR1" | i32 code | u32 len | stdout | u32 len | stderr (little-endian).
// Code -1 tells the front to run the cold path; it is only sent when nothing was changed.
import type net from 'node:net';
import { parseFlags, type ShimFlags } from './flags.js';
import { ColdPathNeeded, type ActionIo } from './io.js';
import { messageOf } from '../errors.js';

export const FRONT_MAGIC = Buffer.from('URF1');
const REPLY_MAGIC = Buffer.from('URR1');
/** A forwarded invocation is small (argv, env, start's options); anything bigger is refused. */
const MAX_REQUEST = 1 << 20;

export interface FrontRequest {
  cwd: string;
  stdin: Buffer;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Decodes a whole request (magic included); throws on anything malformed or truncated. */
export function decodeFrontRequest(buf: Buffer): FrontRequest {
  if (buf.length < 8 || !buf.subarray(0, 4).equals(FRONT_MAGIC)) throw new Error('front: bad magic');
  const n = buf.readUInt32LE(4);
  let off = 8;
  const fields: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    if (off + 4 > buf.length) throw new Error('front: truncated request');
    const len = buf.readUInt32LE(off);
    off += 4;
    if (off + len > buf.length) throw new Error('front: truncated request');
    fields.push(buf.subarray(off, off + len));
    off += len;
  }
  if (off !== buf.length || fields.length < 2) throw new Error('front: malformed request');
  const [cwd, stdin, ...rest] = fields as [Buffer, Buffer, ...Buffer[]];
  const args: string[] = [];
  const env: NodeJS.ProcessEnv = {};
  for (const f of rest) {
    const tag = String.fromCharCode(f[0] ?? 0);
    const text = f.subarray(1).toString('utf8');
    if (tag === 'A') args.push(text);
    else if (tag === 'E') {
      const eq = text.indexOf('=');
      if (eq > 0) env[text.slice(0, eq)] = text.slice(eq + 1);
    } else throw new Error('front: unknown field');
  }
  return { cwd: cwd.toString('utf8'), stdin: Buffer.from(stdin), args, env };
}

export function encodeFrontReply(code: number, stdout: Buffer, stderr: Buffer): Buffer {
  const head = Buffer.alloc(12);
  REPLY_MAGIC.copy(head, 0);
  head.writeInt32LE(code, 4);
  head.writeUInt32LE(stdout.length, 8);
  const mid = Buffer.alloc(4);
  mid.writeUInt32LE(stderr.length, 0);
  return Buffer.concat([head, stdout, mid, stderr]);
}

/** Whether a forwarded start's deadline (set by native/front.c, wall-clock ms) has passed. */
export function startExpired(env: NodeJS.ProcessEnv, now = Date.now()): boolean {
  const deadline = Number(env.URUNC_FRONT_DEADLINE_MS);
  return env.URUNC_FRONT_DEADLINE_MS !== undefined && Number.isFinite(deadline) && now > deadline;
}

/** The reply that sends a start to a daemon of the container's own group (native/front.c): this daemon is not on its feet. */
export function routeAroundReply(): Buffer {
  return encodeFrontReply(-2, Buffer.alloc(0), Buffer.alloc(0));
}

/** The reply that sends the front down the cold path; only given before anything changed. */
export function declineReply(): Buffer {
  return encodeFrontReply(-1, Buffer.alloc(0), Buffer.alloc(0));
}

export type FrontAction = (f: ShimFlags, io: ActionIo) => Promise<void>;

/** Runs one forwarded invocation; resolves to the reply. Errors become exit code 1 with the message on stderr, as in a cold process. */
export async function runForwarded(req: FrontRequest, actions: Record<'start' | 'delete', FrontAction>): Promise<Buffer> {
  const out: Buffer[] = [];
  const err: string[] = [];
  let f: ShimFlags;
  try {
    f = parseFlags(req.args);
  } catch {
    return declineReply();
  }
  const action = f.action === 'start' || f.action === 'delete' ? actions[f.action] : undefined;
  if (!action || f.version || f.info) return declineReply();
  // A start the front stopped waiting for (this daemon was stopped or blocked past the deadline):
  // the front has routed the container to another daemon, so this one must change nothing.
  if (startExpired(req.env)) return declineReply();
  const io: ActionIo = {
    forwarded: true,
    cwd: req.cwd,
    env: req.env,
    stdin: () => req.stdin,
    stdout: (d) => void out.push(Buffer.from(d)),
    stderr: (t) => void err.push(t),
  };
  try {
    await action(f, io);
    return encodeFrontReply(0, Buffer.concat(out), Buffer.from(err.join('')));
  } catch (e: unknown) {
    if (e instanceof ColdPathNeeded) return declineReply();
    err.push(`containerd-shim-urunc-v2: ${messageOf(e)}\n`);
    return encodeFrontReply(1, Buffer.alloc(0), Buffer.from(err.join('')));
  }
}

/** Serves one front connection whose first bytes (already read) are `first`. */
export function serveFront(sock: net.Socket, first: Buffer, handle: (req: FrontRequest) => Promise<Buffer>): void {
  const chunks: Buffer[] = [first];
  let size = first.length;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    let req: FrontRequest;
    try {
      req = decodeFrontRequest(Buffer.concat(chunks));
    } catch {
      sock.destroy();
      return;
    }
    handle(req).then((reply) => sock.end(reply), () => sock.destroy());
  };
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    size += d.length;
    if (size > MAX_REQUEST) {
      done = true;
      sock.destroy();
    }
  });
  sock.on('end', finish);
  sock.on('error', () => sock.destroy());
  // The ttrpc server paused it while telling the protocols apart.
  sock.resume();
}
