// urunit, the init of urunc's Linux guests: the config file urunc hands it (env, user and working
// directory, block mounts) and the cpio record that carries it inside an initrd. The format is
// urunc's Linux.buildUrunitConfig as urunit's main.c parses it: three sections, UES..UEE one env
// string per line, UCS..UCE UID:/GID:/WD:, UBS..UBE ID:/MP: pairs, every line ending in \n.
import { invalidArgument } from '../../errors.js';

/** urunc treats a guest whose init path contains "urunit" as a urunit guest (Linux.Init). */
export const isUrunit = (app: string | undefined): boolean => app !== undefined && app.includes('urunit');

export interface UrunitConfig {
  env: string[];
  uid: number;
  gid: number;
  cwd: string;
  /** Data disks: the id urunit finds the disk by (its virtio serial, FC<n> for firecracker) and where it mounts it. */
  volumes: Array<{ id: string; mountPoint: string }>;
}

/** urunit's block section for a VM's disks: every disk but the root, named FC<id> on firecracker (drives found by order). */
export function urunitVolumes(disks: ReadonlyArray<{ id: string; mountPoint: string }>, firecracker: boolean): UrunitConfig['volumes'] {
  return disks.filter((d) => d.id !== 'rootfs').map((d) => ({ id: firecracker ? `FC${d.id}` : d.id, mountPoint: d.mountPoint }));
}

/**
 * The config text. urunit splits on newlines and drops the whole config for an empty WD, so a
 * value that cannot be represented is a clear error here instead of a silently different guest.
 */
export function urunitConfig(c: UrunitConfig): string {
  for (const e of c.env) {
    if (/[\n\r]/.test(e)) throw invalidArgument(`env ${JSON.stringify(e.split('=')[0])}: urunit cannot pass a value with a line break`);
    if (e.startsWith('UEE')) throw invalidArgument(`env ${JSON.stringify(e.split('=')[0])}: urunit reads a variable starting with UEE as the end of the list`);
  }
  for (const v of c.volumes) {
    if (/[\n\r]/.test(v.mountPoint) || /[\n\r]/.test(v.id)) throw invalidArgument(`volume ${v.id}: a line break in an id or mount point`);
  }
  if (/[\n\r]/.test(c.cwd)) throw invalidArgument('process.cwd: urunit cannot pass a working directory with a line break');
  const lines = ['UES', ...c.env, 'UEE', 'UCS', `UID:${c.uid}`, `GID:${c.gid}`, `WD:${c.cwd || '/'}`, 'UCE', 'UBS'];
  for (const v of c.volumes) lines.push(`ID:${v.id}`, `MP:${v.mountPoint}`);
  lines.push('UBE');
  return `${lines.join('\n')}\n`;
}
