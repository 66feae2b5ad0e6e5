// What keeps the shared daemon small (issue 17): clean file pages dropped at rest
// (src/sys/libc.ts dropFilePages), modules loaded on first use from the daemon's own build
// (src/sys/lazy.ts), lazily loaded ttrpc services, and the light unikernel-key lookup that
// every Create runs before anything heavy is loaded.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/errors.js';
import { cleanFileMappings, dropFilePages } from '../../src/sys/libc.js';
import { lazyOnce, pinChunks, restoreChunks } from '../../src/sys/lazy.js';
import { lazyHandlers } from '../../src/shim/ttrpc/server.js';
import { UNIKERNEL_KEYS } from '../../src/monitors/unikernel-keys.js';
import { SCHEMA_KEYS } from '../../src/monitors/unikernel-config.js';

const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  pinChunks('file:///nowhere/not-a-chunk.mjs');
});

describe('dropping clean file pages at rest', () => {
  it('advises only private, non-writable file mappings without a private copy of any page', () => {
    const smaps = [
      '55d0c0000000-55d0c2000000 r-xp 00000000 fd:01 1234 /usr/bin/node',
      'Rss:                7000 kB',
      'Anonymous:             0 kB',
      '55d0c2000000-55d0c2100000 r--p 02000000 fd:01 1234 /usr/bin/node',
      'Anonymous:            12 kB',
      '55d0c2100000-55d0c2200000 rw-p 02100000 fd:01 1234 /usr/bin/node',
      'Anonymous:             0 kB',
      '7f0000000000-7f0000100000 rw-p 00000000 00:00 0',
      'Anonymous:          1024 kB',
      '7f0000200000-7f0000300000 r--s 00000000 fd:01 99 /dev/shm/x',
      'Anonymous:             0 kB',
      '7f0000400000-7f0000401000 r--p 00000000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6',
      'Anonymous:             0 kB',
      '7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]',
      'Anonymous:             0 kB',
    ].join('\n');
    // Text of node and libc; not the RELRO page (a private copy), the writable data, anonymous memory, a shared mapping or the vdso.
    expect(cleanFileMappings(smaps).map((m) => m.file)).toEqual(['/usr/bin/node', '/usr/lib/x86_64-linux-gnu/libc.so.6']);
  });

  it('on this process: pages are dropped and everything runs on (they come back as it runs)', () => {
    const advised = dropFilePages();
    expect(advised).toBeGreaterThan(1 << 20);
    // Code of node and its libraries was dropped and faults back in.
    expect(JSON.parse(JSON.stringify({ a: [1, 2, 3] }))).toEqual({ a: [1, 2, 3] });
    expect(fs.readdirSync('/proc/self').length).toBeGreaterThan(0);
  });
});

describe('modules loaded on first use, from the daemon\'s own build', () => {
  it('a chunk an upgrade removed is put back from the descriptor pinned at start; a chunk still there is left alone', () => {
    const dist = fs.mkdtempSync(path.join(os.tmpdir(), 'dist-'));
    tmp.push(dist);
    const chunks = path.join(dist, 'chunks');
    fs.mkdirSync(chunks);
    fs.writeFileSync(path.join(chunks, 'serve-AAAA.mjs'), 'export const serve = 1;');
    fs.writeFileSync(path.join(chunks, 'vm-BBBB.mjs'), 'export const vm = "old build";');
    fs.writeFileSync(path.join(chunks, 'chunk-CCCC.mjs'), 'export const shared = 2;');
    expect(pinChunks(pathToFileURL(path.join(chunks, 'serve-AAAA.mjs')).href)).toBe(3);
    // The upgrade: the build removes dist/ and writes the new one (other hashes, one the same).
    fs.rmSync(dist, { recursive: true });
    fs.mkdirSync(chunks, { recursive: true });
    fs.writeFileSync(path.join(chunks, 'vm-DDDD.mjs'), 'export const vm = "new build";');
    fs.writeFileSync(path.join(chunks, 'chunk-CCCC.mjs'), 'export const shared = 2;');
    expect(restoreChunks().sort()).toEqual(['serve-AAAA.mjs', 'vm-BBBB.mjs']);
    expect(fs.readFileSync(path.join(chunks, 'vm-BBBB.mjs'), 'utf8')).toBe('export const vm = "old build";');
    expect(fs.readFileSync(path.join(chunks, 'vm-DDDD.mjs'), 'utf8')).toBe('export const vm = "new build";');
    expect(restoreChunks()).toEqual([]);
  });

  it('outside dist/chunks (tests, tsx) nothing is pinned', () => {
    expect(pinChunks(import.meta.url)).toBe(0);
    expect(restoreChunks()).toEqual([]);
  });

  it('lazyOnce loads once and hands the same module to every later call; a failed load is tried again', async () => {
    let loads = 0;
    let fail = true;
    const mod = lazyOnce(async () => {
      loads++;
      if (fail) throw new Error('load failed');
      return { n: loads };
    });
    await expect(mod()).rejects.toThrow('load failed');
    fail = false;
    const a = await mod();
    expect(await mod()).toBe(a);
    expect(loads).toBe(2);
  });

  it('a lazily loaded ttrpc service loads at its first call, once; a failed load is retried; an unknown method is Unimplemented', async () => {
    let loads = 0;
    let fail = true;
    const handlers = lazyHandlers(['Ping', 'Missing'], async () => {
      loads++;
      if (fail) throw new Error('load failed');
      return { Ping: async () => new Uint8Array([1]) };
    });
    expect(loads).toBe(0);
    const ctx = { service: 's', method: 'Ping', namespace: undefined, metadata: new Map(), deadline: undefined } as never;
    await expect(handlers.Ping?.(ctx, new Uint8Array())).rejects.toThrow('load failed');
    fail = false;
    expect(await handlers.Ping?.(ctx, new Uint8Array())).toEqual(new Uint8Array([1]));
    expect(await handlers.Ping?.(ctx, new Uint8Array())).toEqual(new Uint8Array([1]));
    expect(loads).toBe(2);
    await expect(handlers.Missing?.(ctx, new Uint8Array())).rejects.toMatchObject({ code: Code.Unimplemented });
  });
});

it('the light unikernel-key list is the schema\'s', () => {
  expect([...UNIKERNEL_KEYS].sort()).toEqual([...SCHEMA_KEYS].sort());
});
