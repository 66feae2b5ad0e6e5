// OOM detection from the container's memory cgroup: the kernel's oom_kill counter (cgroup v1
// memory.oom_control, v2 memory.events). Read when the init exits, before runc deletes the
// cgroup, so an exit caused by the OOM killer is preceded by TaskOOM.
import fs from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup';

/** Files that may hold the counter for a cgroupfs-style path; systemd "slice:prefix:name" paths are skipped. */
export function oomCounterFiles(cgroupsPath: string | undefined): string[] {
  if (!cgroupsPath || !cgroupsPath.startsWith('/') || cgroupsPath.split('/').includes('..')) return [];
  return [
    path.join(ROOT, 'memory', cgroupsPath, 'memory.oom_control'),
    path.join(ROOT, cgroupsPath, 'memory.events'),
    path.join(ROOT, 'unified', cgroupsPath, 'memory.events'),
  ];
}

export function oomKills(cgroupsPath: string | undefined): number {
  for (const file of oomCounterFiles(cgroupsPath)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const m = /^oom_kill (\d+)$/m.exec(text);
    if (m) return Number(m[1]);
  }
  return 0;
}
