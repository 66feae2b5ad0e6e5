// Modules the daemon loads on first use, from its own build.
//
// The daemon lives for as long as it serves containers, and an upgrade may replace dist/ meanwhile:
// the build removes the directory, a package manager renames new files over the old ones. Chunk
// names carry a hash of their content, so a chunk of the running build that is still there by name
// is the same file; one that is gone is put back from the descriptor the daemon opened at start
// (pinChunks), before anything is imported. Outside the bundle (tests, tsx) nothing is pinned and
// lazy() is a plain import.
import fs from 'node:fs';
import path from 'node:path';

interface Pinned {
  file: string;
  fd: number;
}

let pinned: Pinned[] = [];

/**
 * Opens every chunk of the running build (the directory of `moduleUrl` when it is dist/chunks) and
 * keeps the descriptors for the daemon's life. Returns how many.
 */
export function pinChunks(moduleUrl: string): number {
  for (const p of pinned) fs.closeSync(p.fd);
  pinned = [];
  if (!moduleUrl.startsWith('file:')) return 0;
  const dir = path.dirname(new URL(moduleUrl).pathname);
  if (path.basename(dir) !== 'chunks') return 0;
  // (libuv opens every file close-on-exec: nothing the daemon spawns inherits these.)
  for (const name of fs.readdirSync(dir)) {
    if (!name.endsWith('.mjs')) continue;
    const file = path.join(dir, name);
    try {
      pinned.push({ file, fd: fs.openSync(file, 'r') });
    } catch {
      // removed while listing: an upgrade in progress; whatever is gone cannot be pinned
    }
  }
  return pinned.length;
}

/** Puts back every pinned chunk that is no longer at its path; returns their names. */
export function restoreChunks(): string[] {
  const restored: string[] = [];
  for (const p of pinned) {
    if (fs.existsSync(p.file)) continue;
    fs.mkdirSync(path.dirname(p.file), { recursive: true });
    const tmp = `${p.file}.${process.pid}.tmp`;
    // The descriptor's magic link opens the pinned file itself, removed or not.
    fs.copyFileSync(`/proc/self/fd/${p.fd}`, tmp);
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, p.file);
    restored.push(path.basename(p.file));
  }
  return restored;
}

/** A module loaded on first use (see above); `load` is the import itself, so the bundler sees it. */
export async function lazy<T>(load: () => Promise<T>): Promise<T> {
  if (pinned.length > 0) restoreChunks();
  return load();
}

/** lazy() once: every later call gets the loaded module without looking at the chunks again (a failed load is tried again). */
export function lazyOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => {
    loaded ??= lazy(load).catch((err: unknown) => {
      loaded = undefined;
      throw err;
    });
    return loaded;
  };
}
