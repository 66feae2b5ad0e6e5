// Reading a file whose size someone else controls (an image's urunc.json, a bundle's config.json):
// opened without following a final symlink and without blocking on a fifo, refused unless it is a
// regular file no bigger than the cap, and read off the event loop (the async form). One daemon
// serves many containers, so a hostile file must cost it an error, never its memory or its loop.
import fs from 'node:fs';
import { invalidArgument } from '../errors.js';

const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW;

export const MiB = 2 ** 20;

function check(st: fs.Stats, what: string, max: number): void {
  if (!st.isFile()) throw invalidArgument(`${what} is not a regular file`);
  if (st.size > max) throw invalidArgument(`${what} is ${st.size} bytes, more than the ${max >= MiB ? `${max / MiB} MiB` : `${max} bytes`} allowed`);
}

function openError(err: unknown, what: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return invalidArgument(`${what} is a symbolic link`);
  return err as Error;
}

/** The whole file as text, read off the event loop; refuses non-regular files and files over `max` bytes. */
export async function readCapped(file: string, max: number, what: string): Promise<string> {
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(file, FLAGS);
  } catch (err: unknown) {
    throw openError(err, what);
  }
  try {
    const st = await h.stat();
    check(st, what, max);
    // One byte more than the stat said: a file that grew after it is refused, never read on.
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > st.size) throw invalidArgument(`${what} grew while it was read`);
    }
    return buf.toString('utf8', 0, n);
  } finally {
    await h.close();
  }
}

/** readCapped for small files the caller needs at once (a bundle's config.json, capped in the MiB). */
export function readCappedSync(file: string, max: number, what: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, FLAGS);
  } catch (err: unknown) {
    throw openError(err, what);
  }
  try {
    const st = fs.fstatSync(fd);
    check(st, what, max);
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, n);
      if (r === 0) break;
      n += r;
      if (n > st.size) throw invalidArgument(`${what} grew while it was read`);
    }
    return buf.toString('utf8', 0, n);
  } finally {
    fs.closeSync(fd);
  }
}
