// The one place that calls libc directly (through koffi), for what Node has no API for:
// subreaping, targeted waitpid, real pipes, mount/umount, ioctl on terminals and SCM_RIGHTS.
// Loaded lazily so `start` and `-info` never pay for koffi.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import util from 'node:util';
import { bounded } from './off-loop.js';

const require = createRequire(import.meta.url);

type Fn = (...args: unknown[]) => number;
interface Koffi {
  load(path: string): { func(decl: string): Fn };
  errno(): number;
  struct(name: string, def: Record<string, unknown>): unknown;
  pointer(t: unknown): unknown;
  array(t: unknown, n: number): unknown;
  alloc(t: unknown, n: number): unknown;
  decode(p: unknown, t: unknown): unknown;
  sizeof(t: unknown): number;
}

interface Libc {
  k: Koffi;
  prctl: Fn;
  waitpid: Fn;
  pipe2: Fn;
  mount: Fn;
  umount2: Fn;
  ioctlWinsize: Fn;
  ioctlIntOut: Fn;
  ioctlInt: Fn;
  dup: Fn;
  close: Fn;
  fcntl: Fn;
  recvmsg: Fn;
  mallocTrim: Fn;
  mallopt: Fn;
  madvise: Fn;
  msghdr: unknown;
  iovec: unknown;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const k = require('koffi') as Koffi;
  const lib = k.load('libc.so.6');
  const iovec = k.struct('iovec', { iov_base: 'void *', iov_len: 'size_t' });
  const msghdr = k.struct('msghdr', {
    msg_name: 'void *',
    msg_namelen: 'uint32_t',
    msg_iov: 'void *',
    msg_iovlen: 'size_t',
    msg_control: 'void *',
    msg_controllen: 'size_t',
    msg_flags: 'int',
  });
  k.struct('winsize', { ws_row: 'uint16_t', ws_col: 'uint16_t', ws_xpixel: 'uint16_t', ws_ypixel: 'uint16_t' });
  libc = {
    k,
    prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)'),
    waitpid: lib.func('int waitpid(int pid, _Out_ int *status, int options)'),
    pipe2: lib.func('int pipe2(_Out_ int *fds, int flags)'),
    mount: lib.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
    ioctlWinsize: lib.func('int ioctl(int fd, unsigned long req, const winsize *ws)'),
    ioctlIntOut: lib.func('int ioctl(int fd, unsigned long req, _Out_ int *value)'),
    ioctlInt: lib.func('int ioctl(int fd, unsigned long req, unsigned long arg)'),
    dup: lib.func('int dup(int fd)'),
    close: lib.func('int close(int fd)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    recvmsg: lib.func('long recvmsg(int fd, msghdr *msg, int flags)'),
    mallocTrim: lib.func('int malloc_trim(size_t pad)'),
    mallopt: lib.func('int mallopt(int param, int value)'),
    madvise: lib.func('int madvise(uintptr_t addr, size_t len, int advice)'),
    msghdr,
    iovec,
  };
  return libc;
}

export class Errno extends Error {
  /** The errno's name (ENOENT, ...), or `errno N` for a number libuv does not know. */
  readonly code: string;

  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    const code = errnoName(errno);
    super(`${call}: ${code} (errno ${errno})`);
    this.name = 'Errno';
    this.code = code;
  }
}

function errnoName(errno: number): string {
  try {
    return util.getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

export const EINTR = 4;
export const ECHILD = 10;
export const EAGAIN = 11;
export const EINVAL = 22;
export const ENOENT = 2;
export const EBUSY = 16;

function check(call: string, rc: number): number {
  if (rc < 0) throw new Errno(call, load().k.errno());
  return rc;
}

const F_SETFD = 2;
const FD_CLOEXEC = 1;
/** Marks an inherited fd close-on-exec (Node only does so for fds it opens itself). */
export function setCloexec(fd: number): void {
  check('fcntl(F_SETFD)', load().fcntl(fd, F_SETFD, FD_CLOEXEC));
}

const PR_SET_CHILD_SUBREAPER = 36;
export function setChildSubreaper(): void {
  const l = load();
  check('prctl(PR_SET_CHILD_SUBREAPER)', l.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
}

export type WaitResult = { pid: number; status: number } | undefined;
const WNOHANG = 1;
/** Non-blocking waitpid on one pid: the decoded exit status, or undefined while it runs. */
export function reapPid(pid: number): WaitResult {
  const l = load();
  const st = [0];
  for (;;) {
    const rc = l.waitpid(pid, st, WNOHANG);
    if (rc === 0) return undefined;
    if (rc < 0) {
      const e = l.k.errno();
      if (e === EINTR) continue;
      throw new Errno('waitpid', e);
    }
    return { pid: rc, status: decodeWaitStatus(st[0] ?? 0) };
  }
}

/** Shell convention: exit code, or 128 + signal for a signalled process. */
export function decodeWaitStatus(raw: number): number {
  const sig = raw & 0x7f;
  if (sig === 0) return (raw >> 8) & 0xff;
  return 128 + sig;
}

const O_CLOEXEC = 0o2000000;
/** A real pipe (not a socketpair): [readFd, writeFd], both close-on-exec. */
export function makePipe(): [number, number] {
  const fds = [0, 0];
  check('pipe2', load().pipe2(fds, O_CLOEXEC));
  return [fds[0] ?? -1, fds[1] ?? -1];
}

type AsyncFn = Fn & { async(...args: unknown[]): void };

/** A libc call on koffi's worker threads (libuv's pool): its return value and errno. */
function callOffLoop(fn: Fn, args: unknown[]): Promise<{ rc: number; errno: number }> {
  const l = load();
  return new Promise((resolve, reject) => {
    (fn as AsyncFn).async(...args, (err: unknown, rc: number) => {
      // koffi hands the worker's errno back with the result: read it before anything else runs.
      const errno = rc < 0 ? l.k.errno() : 0;
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ rc, errno });
    });
  });
}

/** mount(2), off the event loop and bounded (src/sys/off-loop.ts): a filesystem that stops answering stalls only this call. */
export async function mount(source: string, target: string, fstype: string, flags: number, data: string): Promise<void> {
  const r = await bounded(`mount ${target}`, callOffLoop(load().mount, [source, target, fstype, flags, data || null]));
  if (r.rc < 0) throw new Errno(`mount ${target}`, r.errno);
}

export const MNT_DETACH = 2;
/** umount2, off the event loop and bounded; returns the errno instead of throwing so callers can loop until EINVAL. */
export async function umount(target: string, flags = 0): Promise<number> {
  const r = await bounded(`umount ${target}`, callOffLoop(load().umount2, [target, flags]));
  return r.rc < 0 ? r.errno : 0;
}

const FIONREAD = 0x541b;
/** Bytes waiting in a pipe or fifo (either end): how much its reader has not read yet. */
export function unreadBytes(fd: number): number {
  const v = [0];
  check('ioctl(FIONREAD)', load().ioctlIntOut(fd, FIONREAD, v));
  return v[0] ?? 0;
}

/**
 * glibc's malloc_trim(0): hands every free page of the C heap (the main heap and each thread's arena)
 * back to the kernel; glibc otherwise keeps them for later mallocs. Returns whether any was released.
 */
export function mallocTrim(): boolean {
  return load().mallocTrim(0) === 1;
}

const M_ARENA_MAX = -8;
/**
 * Caps glibc's malloc arenas (one per thread by default, up to 8 per core): each of the daemon's
 * pool threads otherwise keeps its own partly used pages. Affects arenas made after the call.
 */
export function limitMallocArenas(n: number): void {
  if (load().mallopt(M_ARENA_MAX, n) !== 1) throw new Error('mallopt(M_ARENA_MAX) failed');
}

const MADV_DONTNEED = 4;

/**
 * Drops the pages of this process's clean, read-only file mappings from its page tables: the code
 * and constants of node, its libraries and koffi that start-up touched once. They stay in the page
 * cache, and what the daemon runs again comes back as a minor fault; without this they count in
 * its RSS for as long as it lives (node's start alone touches about 30 MiB of its binary). Only
 * private mappings that are not writable and hold no private copy of a page (smaps `Anonymous: 0`;
 * RELRO, relocated after mapping, has them) are advised, so no content can change. Returns the
 * bytes advised.
 */
export function dropFilePages(smaps = fs.readFileSync('/proc/self/smaps', 'utf8')): number {
  const { madvise } = load();
  let advised = 0;
  for (const m of cleanFileMappings(smaps)) if (madvise(m.start, m.end - m.start, MADV_DONTNEED) === 0) advised += m.end - m.start;
  return advised;
}

/** The mappings of /proc/<pid>/smaps text that dropFilePages may advise. */
export function cleanFileMappings(smaps: string): Array<{ start: number; end: number; file: string }> {
  const out: Array<{ start: number; end: number; file: string }> = [];
  let cur: { start: number; end: number; file: string; ok: boolean; anon: number } | undefined;
  const flush = (): void => {
    if (cur?.ok && cur.anon === 0) out.push({ start: cur.start, end: cur.end, file: cur.file });
  };
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      flush();
      const perms = head[3] as string;
      cur = {
        start: Number.parseInt(head[1] as string, 16), end: Number.parseInt(head[2] as string, 16), file: head[5] ?? '',
        ok: head[4] !== '0' && perms[0] === 'r' && perms[1] === '-' && perms[3] === 'p', anon: -1,
      };
      continue;
    }
    const anon = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (anon && cur) cur.anon = Number(anon[1]);
  }
  flush();
  return out;
}

const TIOCSWINSZ = 0x5414;
export function setWinsize(fd: number, cols: number, rows: number): void {
  check('ioctl(TIOCSWINSZ)', load().ioctlWinsize(fd, TIOCSWINSZ, { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }));
}

export function dupFd(fd: number): number {
  return check('dup', load().dup(fd));
}

export function closeFd(fd: number): void {
  load().close(fd);
}

const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
/**
 * Receives one file descriptor sent with SCM_RIGHTS on a connected unix socket (non-blocking).
 * Returns undefined when nothing has arrived yet (EAGAIN); throws when the peer closed without one.
 */
export function recvFd(sock: number): number | undefined {
  const l = load();
  const data = Buffer.alloc(256);
  const control = Buffer.alloc(64);
  const iov = { iov_base: data, iov_len: data.length };
  const iovArr = l.k.alloc(l.iovec, 1);
  // koffi encodes a plain object into the allocated struct when passed through the typed pointer below.
  const msg = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: iovArr,
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: control.length,
    msg_flags: 0,
  };
  encodeInto(l, iovArr, l.iovec, iov);
  const rc = l.recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (rc < 0) {
    const e = l.k.errno();
    if (e === EAGAIN || e === EINTR) return undefined;
    throw new Errno('recvmsg', e);
  }
  // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the fds.
  const len = Number(control.readBigUInt64LE(0));
  const level = control.readInt32LE(8);
  const type = control.readInt32LE(12);
  const SOL_SOCKET = 1;
  const SCM_RIGHTS = 1;
  if (len < 20 || level !== SOL_SOCKET || type !== SCM_RIGHTS) {
    if (rc === 0) throw new Error('console socket closed without a file descriptor');
    throw new Error('console socket message carried no file descriptor');
  }
  return control.readInt32LE(16);
}

function encodeInto(l: Libc, ptr: unknown, type: unknown, value: unknown): void {
  (l.k as unknown as { encode(p: unknown, t: unknown, v: unknown): void }).encode(ptr, type, value);
}

const KVM_GET_API_VERSION = 0xae00;
const KVM_CREATE_VM = 0xae01;

/** True when /dev/kvm opens and can create a VM (the accelerator probe for "auto"). */
export function kvmUsable(): boolean {
  let fd: number;
  try {
    fd = fs.openSync('/dev/kvm', 'r+');
  } catch {
    return false;
  }
  try {
    const l = load();
    if (l.ioctlInt(fd, KVM_GET_API_VERSION, 0) !== 12) return false;
    const vm = l.ioctlInt(fd, KVM_CREATE_VM, 0) as number;
    if (vm < 0) return false;
    fs.closeSync(vm);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}
