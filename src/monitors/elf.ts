// What a dynamically linked helper needs besides the host's library directories: its program
// interpreter (PT_INTERP) and its DT_RPATH/DT_RUNPATH directories, read from the ELF file itself
// (64-bit little-endian, the only kind the monitors here are built as). A relocated build (say,
// virtiofsd from a newer Debian with its own loader and libc) then works inside the monitor root
// when those directories are bound there too. The file is the host's configuration, never the
// image's; only its headers are read.
import fs from 'node:fs';
import path from 'node:path';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_STRTAB = 5n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;
/** Headers, program headers and the dynamic section of any real helper fit well within this. */
const MAX_READ = 64 * 2 ** 20;

export interface ElfLoading {
  interpreter: string | undefined;
  /** RPATH/RUNPATH entries, $ORIGIN expanded, in order. */
  searchDirs: string[];
}

/** undefined when the file is not a 64-bit little-endian ELF (a script, a static build without PT_INTERP still parses). */
export function elfLoading(file: string): ElfLoading | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const read = (off: number, len: number): Buffer => {
      if (off < 0 || len < 0 || off + len > MAX_READ) throw new Error(`${file}: ELF header points outside the file`);
      const b = Buffer.alloc(len);
      const n = fs.readSync(fd, b, 0, len, off);
      if (n !== len) throw new Error(`${file}: truncated ELF`);
      return b;
    };
    const eh = Buffer.alloc(64);
    if (fs.readSync(fd, eh, 0, 64, 0) < 64) return undefined;
    if (eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    const ph = read(phoff, phentsize * phnum);
    const loads: Array<{ vaddr: bigint; offset: bigint; filesz: bigint }> = [];
    let interpreter: string | undefined;
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      const type = ph.readUInt32LE(o);
      const offset = ph.readBigUInt64LE(o + 8);
      const vaddr = ph.readBigUInt64LE(o + 16);
      const filesz = ph.readBigUInt64LE(o + 32);
      if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
      else if (type === PT_INTERP) interpreter = cString(read(Number(offset), Number(filesz)), 0);
      else if (type === PT_DYNAMIC) dynamic = { offset: Number(offset), size: Number(filesz) };
    }
    const searchDirs: string[] = [];
    if (dynamic) {
      const dyn = read(dynamic.offset, dynamic.size);
      let strtab: bigint | undefined;
      const paths: bigint[] = [];
      for (let o = 0; o + 16 <= dyn.length; o += 16) {
        const tag = dyn.readBigInt64LE(o);
        const val = dyn.readBigUInt64LE(o + 8);
        if (tag === DT_NULL) break;
        if (tag === DT_STRTAB) strtab = val;
        else if (tag === DT_RPATH || tag === DT_RUNPATH) paths.push(val);
      }
      // DT_STRTAB is an address: map it to a file offset through the PT_LOAD segment holding it.
      const seg = strtab === undefined ? undefined : loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.filesz);
      if (seg && strtab !== undefined) {
        const base = Number(seg.offset + (strtab - seg.vaddr));
        const origin = path.dirname(fs.realpathSync(file));
        for (const p of paths) {
          const s = cString(read(base + Number(p), Math.min(4096, Number(seg.offset + seg.filesz) - base - Number(p))), 0);
          for (const d of s.split(':').filter(Boolean)) searchDirs.push(d.replace(/\$(ORIGIN|\{ORIGIN\})/g, origin));
        }
      }
    }
    return { interpreter, searchDirs };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The directories to bind (read-only, at their own paths) so that `binary` loads inside a root
 * that already has `bound`: its interpreter's and its search path's real directories, minus those
 * under a bound one. Missing directories are skipped; the loader reports what it cannot find.
 * Synchronous: `binary` is one of the host's own programs (virtiofsd), never a file of an image.
 */
export function loaderDirs(binary: string, bound: readonly string[]): string[] {
  const elf = elfLoading(binary);
  if (!elf) return [];
  const dirs = [...(elf.interpreter ? [path.dirname(elf.interpreter)] : []), ...elf.searchDirs].filter((d) => path.isAbsolute(d));
  const out: string[] = [];
  for (const d of dirs) {
    let real: string;
    try {
      real = fs.realpathSync(d);
    } catch {
      continue;
    }
    const covered = (b: string) => real === b || real.startsWith(`${b}/`);
    if (bound.some(covered) || out.some(covered)) continue;
    out.push(real);
    // The interpreter itself must be reachable at its recorded path, which may be a symlink into `real`.
    if (d !== real && !out.includes(d)) out.push(d);
  }
  return out;
}

function cString(b: Buffer, at: number): string {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end < 0 ? b.length : end);
}
