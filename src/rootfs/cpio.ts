// A minimal newc (SVR4, no CRC) cpio writer: the format the kernel unpacks from an initrd, also
// when an uncompressed archive follows another one (at a 4-byte aligned offset).
export interface CpioEntry {
  /** The path inside the archive, as the guest sees it. */
  name: string;
  /** Full st_mode: 0o040755 for a directory, 0o100644 for a regular file. */
  mode: number;
  data?: Buffer;
}

export function cpioArchive(entries: readonly CpioEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  const pad = (len: number) => Buffer.alloc((4 - (len % 4)) % 4);
  const record = (ino: number, name: string, mode: number, nlink: number, body: Buffer) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, nlink, mtime, body.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map(hex).join('')}`, 'ascii');
    parts.push(header, nameBytes, pad(header.length + nameBytes.length), body, pad(body.length));
  };
  entries.forEach((e, i) => record(i + 1, e.name, e.mode, (e.mode & 0o170000) === 0o040000 ? 2 : 1, e.data ?? Buffer.alloc(0)));
  record(0, 'TRAILER!!!', 0, 1, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Directory entries for every parent of `names` (sorted, each once), so the kernel can create the files. */
export function parentDirs(names: readonly string[]): CpioEntry[] {
  const dirs = new Set<string>();
  for (const n of names) {
    const parts = n.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
  }
  return [...dirs].sort().map((name) => ({ name, mode: 0o040755 }));
}
