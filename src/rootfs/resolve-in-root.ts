// Image-controlled paths (urunc.json, annotations) resolved inside the image root, never outside:
// absolute paths and absolute symlink targets start at the root (chroot semantics); a `..` that
// would climb above the root, directly or through a symlink, is refused rather than clamped, so a
// hostile image gets a clear error instead of some other file.
// The image may sit on a filesystem that stops answering (a lazy-pulling snapshotter's FUSE mount,
// NFS): each walk runs on the thread pool and is bounded (src/sys/off-loop.ts).
import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { invalidArgument, notFound } from '../errors.js';
import { bounded } from '../sys/off-loop.js';

const MAX_LINKS = 40;

/** The host path of `p` inside `root`, with every symlink followed inside the root. */
export function resolveInRoot(root: string, p: string, what: string): Promise<string> {
  return bounded(`${what} ${JSON.stringify(p)} in ${root}`, walk(root, p, what));
}

async function walk(root: string, p: string, what: string): Promise<string> {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '..') {
      if (resolved.length === 0) throw invalidArgument(`${what} ${JSON.stringify(p)} escapes the image root`);
      resolved.pop();
      continue;
    }
    const host = path.join(root, ...resolved, part);
    let st: Stats;
    try {
      st = await fs.lstat(host);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${what} ${JSON.stringify(p)} does not exist in the image`);
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw invalidArgument(`${what} ${JSON.stringify(p)}: too many symbolic links`);
      const target = await fs.readlink(host);
      const rest = target.split('/').filter((s) => s !== '' && s !== '.');
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...rest);
      continue;
    }
    if (parts.length > 0 && !st.isDirectory()) throw invalidArgument(`${what} ${JSON.stringify(p)}: ${part} is not a directory`);
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** Like resolveInRoot, and the result must be a regular file. */
export async function resolveFileInRoot(root: string, p: string, what: string): Promise<string> {
  const host = await resolveInRoot(root, p, what);
  if (!(await bounded(`stat ${host}`, fs.stat(host))).isFile()) throw invalidArgument(`${what} ${JSON.stringify(p)} is not a regular file`);
  return host;
}
