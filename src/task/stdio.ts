// A process's stdio as containerd describes it (fifo paths, binary:// loggers, file:// paths, or
// nothing), turned into the fds runc hands to the container. Owned by one process; destroy()
// releases every fd, copier and logger it holds and is safe to call twice.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Transform, pipeline } from 'node:stream';
import tty from 'node:tty';
import { constants as C } from 'node:fs';
import { Code, ShimError, messageOf } from '../errors.js';
import { closeFd, dupFd, makePipe, recvFd, setWinsize, unreadBytes } from '../sys/libc.js';
import { armed } from '../sys/failpoints.js';
import { spawnOwned } from '../sys/spawn.js';
import { bounded } from '../sys/off-loop.js';
import type { RuncStdio } from './runc.js';

export interface StdioSpec {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface IoContext {
  containerId: string;
  namespace: string;
}


type Uri = { scheme: 'fifo'; path: string } | { scheme: 'binary' | 'file'; url: URL } | undefined;

function parseUri(s: string): Uri {
  if (!s) return undefined;
  if (!s.includes('://')) return { scheme: 'fifo', path: s };
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw new ShimError(Code.InvalidArgument, `invalid io uri ${JSON.stringify(s)}`);
  }
  if (url.protocol === 'fifo:') return { scheme: 'fifo', path: url.pathname };
  if (url.protocol === 'binary:') return { scheme: 'binary', url };
  if (url.protocol === 'file:') return { scheme: 'file', url };
  throw new ShimError(Code.InvalidArgument, `unsupported io scheme ${url.protocol}`);
}

export class ProcessIO {
  /** fds given to runc; closed in the shim once runc has passed them on. */
  private childFds: number[] = [];
  private readonly closers: Array<() => void> = [];
  private readonly copies: Promise<void>[] = [];
  private stdinWriter: net.Socket | tty.WriteStream | undefined;
  private stdinCopier: StdinCopier | undefined;
  private masterFd: number | undefined;
  private consoleServer: net.Server | undefined;
  private consoleMaster: Promise<number> | undefined;
  private consoleDir: string | undefined;
  readonly stdio: RuncStdio = { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' };
  private destroyed = false;
  /** Output flows through the shim (fifo or terminal), so first-output can be observed. */
  private observable = false;
  private firstOutput: (() => void) | undefined;
  private sawOutput = false;
  /** Bytes of the process's output read (stdout and the terminal), and the sockets they go out on. */
  private outputRead = 0;
  private readonly outputs: net.Socket[] = [];

  private constructor(readonly spec: StdioSpec) {}

  static async open(spec: StdioSpec, ctx: IoContext): Promise<ProcessIO> {
    const io = new ProcessIO(spec);
    try {
      if (spec.terminal) await io.openConsoleSocket();
      else await io.openPipes(ctx);
      return io;
    } catch (err: unknown) {
      io.destroy();
      throw err;
    }
  }

  /** Path for runc --console-socket, when this process has a terminal. */
  get consoleSocket(): string | undefined {
    return this.consoleDir ? path.join(this.consoleDir, 'pty.sock') : undefined;
  }

  private async openPipes(ctx: IoContext): Promise<void> {
    const out = parseUri(this.spec.stdout);
    const err = parseUri(this.spec.stderr);
    if (out?.scheme === 'binary') {
      await this.startLogger(out.url, ctx);
    } else if (out?.scheme === 'file') {
      // Pipes copied into the file, as containerd's runc shim does: the container holds no file of
      // the host (criu can dump and restore pipes, not a file outside the container's mounts).
      // The log's path is the user's and may be on a network filesystem: opened off the loop, bounded.
      await bounded(`mkdir ${path.dirname(out.url.pathname)}`, fs.promises.mkdir(path.dirname(out.url.pathname), { recursive: true }));
      this.stdio.stdout = await this.pipeToFile(out.url.pathname, true);
      this.stdio.stderr = await this.pipeToFile(out.url.pathname);
    } else {
      if (out?.scheme === 'fifo') this.stdio.stdout = await this.pipeToFifo(out.path, true);
      if (err?.scheme === 'fifo') this.stdio.stderr = await this.pipeToFifo(err.path);
    }
    const inp = parseUri(this.spec.stdin);
    if (inp?.scheme === 'fifo') {
      const [r, w] = makePipe();
      this.childFds.push(r);
      this.stdio.stdin = r;
      const writer = new net.Socket({ fd: w, readable: false, writable: true });
      writer.on('error', () => undefined);
      this.stdinWriter = writer;
      this.stdinCopier = new StdinCopier(inp.path, writer, true);
    }
  }

  /** A real pipe whose write end goes to the container and whose read end is copied into the fifo. */
  private async pipeToFifo(fifo: string, watch = false): Promise<number> {
    const dst = await openFifoWriter(fifo);
    const [r, w] = makePipe();
    this.childFds.push(w);
    const src = new net.Socket({ fd: r, readable: true, writable: false });
    if (watch) {
      this.watchOutput(src);
      this.outputs.push(dst);
    }
    this.copies.push(copy(src, dst));
    this.closers.push(() => {
      src.destroy();
      dst.destroy();
    });
    return w;
  }

  /** A real pipe whose write end goes to the container and whose read end is appended to a file. */
  private async pipeToFile(file: string, watch = false): Promise<number> {
    const fd = await bounded(`open ${file}`, fs.promises.open(file, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o644));
    const dst = fs.createWriteStream('', { fd });
    dst.on('error', () => undefined);
    const [r, w] = makePipe();
    this.childFds.push(w);
    const src = new net.Socket({ fd: r, readable: true, writable: false });
    if (watch) this.watchOutput(src);
    this.copies.push(new Promise((resolve) => pipeline(src, dst, () => resolve())));
    this.closers.push(() => {
      src.destroy();
      dst.destroy();
    });
    return w;
  }

  /** binary:// logger contract: fd3 stdout, fd4 stderr, fd5 ready pipe; env names the container. */
  private async startLogger(url: URL, ctx: IoContext): Promise<void> {
    const [outR, outW] = makePipe();
    const [errR, errW] = makePipe();
    const [readyR, readyW] = makePipe();
    const args: string[] = [];
    for (const [k, v] of url.searchParams) args.push(k, v);
    const logger = spawnOwned(url.pathname, args, {
      stdio: ['ignore', 'ignore', 'ignore', outR, errR, readyW],
      env: { ...process.env, CONTAINER_ID: ctx.containerId, CONTAINER_NAMESPACE: ctx.namespace },
      detached: false,
    });
    closeFd(outR);
    closeFd(errR);
    closeFd(readyW);
    this.childFds.push(outW, errW);
    this.stdio.stdout = outW;
    this.stdio.stderr = errW;
    await new Promise<void>((resolve, reject) => {
      const ready = new net.Socket({ fd: readyR, readable: true, writable: false });
      const timer = setTimeout(() => {
        ready.destroy();
        reject(new ShimError(Code.DeadlineExceeded, `logger ${url.pathname} did not become ready`));
      }, 10_000);
      const done = (): void => {
        clearTimeout(timer);
        ready.destroy();
        resolve();
      };
      ready.once('data', done);
      ready.once('end', done);
      ready.once('error', done);
      logger.once('error', (e) => {
        clearTimeout(timer);
        ready.destroy();
        reject(new ShimError(Code.Unknown, `start logger ${url.pathname}: ${messageOf(e)}`));
      });
    });
  }

  private async openConsoleSocket(): Promise<void> {
    this.consoleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'urunc-pty-'));
    const server = net.createServer({ pauseOnConnect: true });
    this.consoleServer = server;
    // runc connects and sends the master before `create`/`exec` returns: listen for it from now on.
    this.consoleMaster = new Promise<number>((resolve, reject) => {
      server.once('connection', (sock: net.Socket) => {
        const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
        const attempt = (left: number): void => {
          try {
            const got = recvFd(fd);
            if (got !== undefined) {
              sock.destroy();
              resolve(got);
            } else if (left > 0) setTimeout(() => attempt(left - 1), 5);
            else throw new ShimError(Code.DeadlineExceeded, 'console fd never arrived');
          } catch (err: unknown) {
            sock.destroy();
            reject(err);
          }
        };
        attempt(400);
      });
    });
    this.consoleMaster.catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.consoleSocket, () => resolve());
    });
  }

  /**
   * After runc create/exec: takes the pty master runc sent and wires it to the fifos.
   * Call only after runc returned successfully (the fd is already queued).
   */
  async receiveConsole(): Promise<void> {
    const pending = this.consoleMaster;
    if (!pending) return;
    let timer: NodeJS.Timeout | undefined;
    const master = await Promise.race([
      pending,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new ShimError(Code.DeadlineExceeded, 'no console from runc')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    this.consoleMaster = undefined;
    this.closeConsoleSocket();
    this.masterFd = master;
    // Separate fds for the read and write handles: libuv allows one watcher per fd.
    const readSide = new tty.ReadStream(dupFd(master));
    this.watchOutput(readSide);
    const out = parseUri(this.spec.stdout);
    if (out?.scheme === 'fifo') {
      const dst = await openFifoWriter(out.path);
      this.outputs.push(dst);
      this.copies.push(copy(readSide, dst));
      this.closers.push(() => dst.destroy());
    } else {
      readSide.resume();
    }
    this.closers.push(() => readSide.destroy());
    const inp = parseUri(this.spec.stdin);
    if (inp?.scheme === 'fifo') {
      const writer = new tty.WriteStream(dupFd(master));
      writer.on('error', () => undefined);
      this.stdinWriter = writer;
      // On a terminal, stdin EOF does not hang up the pty.
      this.stdinCopier = new StdinCopier(inp.path, writer, false);
    }
  }

  private watchOutput(src: NodeJS.EventEmitter): void {
    this.observable = true;
    src.once('data', () => {
      this.sawOutput = true;
      this.firstOutput?.();
    });
    src.on('data', (d: Buffer) => (this.outputRead += d.length));
  }

  /** How much output was read from the process and how much was handed to the client's fifo (for the task log). */
  outputStats(): { read: number; queued: number } {
    return { read: this.outputRead, queued: this.outputs.reduce((n, s) => n + s.writableLength, 0) };
  }

  /** Calls cb at the process's first output byte; false when the output does not pass through here. */
  onFirstOutput(cb: () => void): boolean {
    if (!this.observable) return false;
    if (this.sawOutput) cb();
    else this.firstOutput = cb;
    return true;
  }

  resize(width: number, height: number): void {
    if (this.masterFd === undefined) throw new ShimError(Code.FailedPrecondition, 'process has no terminal');
    setWinsize(this.masterFd, width, height);
  }

  /** Call after runc has started the process: the shim's copies of the child's fds are closed. */
  releaseChildFds(): void {
    for (const fd of this.childFds) closeFd(fd);
    this.childFds = [];
  }

  /** CloseIO: the container sees EOF on stdin (on a terminal, nothing more can be typed). */
  closeStdin(): void {
    this.stdinCopier?.close();
    this.stdinCopier = undefined;
    if (this.stdinWriter instanceof net.Socket) this.stdinWriter.end();
    this.stdinWriter = undefined;
  }

  /** Resolves when all output has been copied out (or after timeoutMs, for output held open by orphans). */
  /** Waits (at most timeoutMs) until every output copy has handed its last byte to the client; false on timeout. */
  async drain(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      Promise.allSettled(this.copies).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return done;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.releaseChildFds();
    this.closeStdin();
    for (const c of this.closers) c();
    if (this.masterFd !== undefined) closeFd(this.masterFd);
    this.masterFd = undefined;
    this.closeConsoleSocket();
  }

  private closeConsoleSocket(): void {
    this.consoleServer?.close();
    this.consoleServer = undefined;
    if (this.consoleDir) fs.rmSync(this.consoleDir, { recursive: true, force: true });
    this.consoleDir = undefined;
  }
}

/**
 * Copies the client's stdin fifo into the container. The read side is opened non-blocking, which
 * takes no thread: a blocking open waits in the thread pool until the client opens its writer, and
 * clients that never do (ctr cancels its stdin when the task ends first) held all four threads of
 * the shared daemon's pool, stalling every other asynchronous file operation of every container.
 * Without a thread it is still true that EOF means the client closed its writer, never "no writer
 * yet": the kernel reports a FIFO readable or hung up only once a writer has come, so libuv, which
 * reads on readiness, sees nothing until then.
 */
class StdinCopier {
  private readonly src: net.Socket;

  constructor(fifo: string, dst: NodeJS.WritableStream, endDst: boolean) {
    const fd = fs.openSync(fifo, C.O_RDONLY | C.O_NONBLOCK);
    this.src = new net.Socket({ fd, readable: true, writable: false });
    this.src.on('error', () => undefined);
    this.src.pipe(dst, { end: endDst });
  }

  close(): void {
    this.src.destroy();
  }
}

/** Opens the fifo for writing once containerd's reader is there (it normally already is). */
async function openFifoWriter(p: string): Promise<FifoWriter> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fd = fs.openSync(p, C.O_WRONLY | C.O_NONBLOCK);
      const s = new net.Socket({ fd, readable: false, writable: true }) as FifoWriter;
      s.on('error', () => undefined);
      s.fifoFd = fd;
      return s;
    } catch (err: unknown) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENXIO' || Date.now() > deadline) {
        throw new ShimError(Code.Unknown, `open fifo ${p}: ${messageOf(err)}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A fifo's write end, with its fd (the socket's own) for FIONREAD. */
type FifoWriter = net.Socket & { fifoFd: number };

/** How long the end of a copy waits for the client to read what is still in its fifo. */
const CONSUMED_WAIT_MS = 1000;

/**
 * Copies src into dst until src ends, dst has handed everything to the fifo, and the client has
 * read it from the fifo (or CONSUMED_WAIT_MS passed); only then is dst closed and the copy done.
 * The process's exit is reported after its copies are done (service.ts), because a containerd
 * client that learns of the exit closes its fifo readers (cio's Cancel, in task Delete) and
 * whatever they have not read yet is lost: measured as 1 to 5 silent consoles in 150 hello
 * unikernels started 50 at once, whose output and exit come within microseconds of each other.
 * If dst fails (the client went away), the copy keeps draining src and discards it, so the
 * container neither blocks on a full pipe nor dies of EPIPE.
 */
function copy(src: NodeJS.ReadableStream & { on(e: string, f: (...a: unknown[]) => void): unknown }, dst: FifoWriter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => resolve();
    src.on('error', done);
    dst.on('finish', done);
    dst.on('close', done);
    // Failure injection: the output reaches the fifo 300 ms late, as under heavy load.
    const feed = armed('io.slow-output')
      ? src.pipe(new Transform({ transform: (chunk, _enc, cb) => void setTimeout(() => cb(null, chunk), 300) }))
      : src;
    dst.on('error', () => {
      feed.unpipe(dst);
      feed.on('data', () => undefined);
      feed.on('end', done);
      feed.on('close', done);
      feed.resume();
    });
    feed.on('end', () => {
      // Everything is queued on dst: once it is written, wait until the client has read it, then close.
      dst.write('', () => void consumed(dst.fifoFd).then(() => dst.end()));
    });
    feed.pipe(dst, { end: false });
  });
}

/** Resolves when the fifo behind fd holds no unread byte, or after CONSUMED_WAIT_MS. */
async function consumed(fd: number): Promise<void> {
  const deadline = Date.now() + CONSUMED_WAIT_MS;
  for (;;) {
    let n = 0;
    try {
      n = unreadBytes(fd);
    } catch {
      return;
    }
    if (n === 0 || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}
