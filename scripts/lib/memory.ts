// Memory of shim processes as a node would see it. PSS splits a shared page among the processes
// mapping it; on a real node the shim daemon is the only node process, so the pages of the node
// binary (and whatever else node processes map) are all its own. A bench run from node (and npm,
// vitest) shares them and would halve the daemon's figure: `pssAlone` counts every file mapping
// that another live node process also maps at its full RSS, and the rest at its PSS (conservative:
// libc and libstdc++ are then charged whole, as if nothing else on the node used them).
import fs from 'node:fs';

export interface Memory {
  rss: number;
  pss: number;
  /** PSS as the only node process on the host (MiB). */
  pssAlone: number;
  /** Anonymous memory (heap, stacks; MiB). */
  anon: number;
}

interface Mapping {
  file: string;
  rssKb: number;
  pssKb: number;
  anonKb: number;
}

function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      cur = { file: head[1] !== '0' ? (head[2] ?? '') : '', rssKb: 0, pssKb: 0, anonKb: 0 };
      out.push(cur);
      continue;
    }
    const kv = /^(Rss|Pss|Anonymous):\s+(\d+) kB/.exec(line);
    if (kv && cur) {
      const v = Number(kv[2]);
      if (kv[1] === 'Rss') cur.rssKb = v;
      else if (kv[1] === 'Pss') cur.pssKb = v;
      else cur.anonKb = v;
    }
  }
  return out;
}

/** The files mapped by live node processes other than `except` (the node binary, its libraries). */
function filesOfOtherNodes(except: Set<number>): Set<string> {
  const node = fs.realpathSync(process.execPath);
  const files = new Set<string>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || except.has(Number(d))) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/exe`) !== node) continue;
      for (const line of fs.readFileSync(`/proc/${d}/maps`, 'utf8').split('\n')) {
        const m = /^\S+ \S+ \S+ \S+ (\d+)\s+(\/.*)$/.exec(line);
        if (m && m[1] !== '0') files.add(m[2] as string);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return files;
}

/** Summed memory of `pids` (MiB). */
export function memoryOf(pids: number[]): Memory {
  const shared = filesOfOtherNodes(new Set(pids));
  let rss = 0;
  let pss = 0;
  let alone = 0;
  let anon = 0;
  for (const pid of pids) {
    for (const m of mappings(pid)) {
      rss += m.rssKb;
      pss += m.pssKb;
      anon += m.anonKb;
      alone += m.file && shared.has(m.file) ? m.rssKb : m.pssKb;
    }
  }
  const mib = (kb: number) => kb / 1024;
  return { rss: mib(rss), pss: mib(pss), pssAlone: mib(alone), anon: mib(anon) };
}
