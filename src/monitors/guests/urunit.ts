// urunit, the init of urunc's Linux guests: the config file urunc hands it (env, user and working
// directory, block mounts) and the cpio record that carries it inside an initrd. The format is
// urunc's Linux.buildUrunitConfig as urunit's main.c parses it: three sections, UES..UEE one env
// string per line, UCS..UCE UID:/GID:/WD:, UBS..UBE ID:/MP: pairs, every line ending in \n.
// FreeBSD's (urunc's FreeBSD.buildUrunitConfig) adds the application's arguments in UCS..UCE
// (ARC:<count>, ARV:<arg> each: FreeBSD starts init without any), the network in UNS..UNE
// (IP:/GW:/MSK:, since it has no ip= boot parameter), then PAD and newlines up to a whole 512-byte
// sector, as it is read from a raw disk (firecracker hides a trailing partial sector).
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
  /** FreeBSD's form: the application's arguments after init, the network (empty values without one), padded to whole sectors. */
  freebsd?: { args: string[]; net: { ip: string; gateway: string; mask: string } | undefined };
}

/** The sector a raw config disk is read in. */
const SECTOR = 512;

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
  const bsd = c.freebsd;
  for (const a of bsd?.args ?? []) if (/[\n\r]/.test(a)) throw invalidArgument(`argument ${JSON.stringify(a)}: urunit cannot pass an argument with a line break`);
  const lines = ['UES', ...c.env, 'UEE', 'UCS', `UID:${c.uid}`, `GID:${c.gid}`, `WD:${c.cwd || '/'}`];
  if (bsd) lines.push(`ARC:${bsd.args.length}`, ...bsd.args.map((a) => `ARV:${a}`));
  lines.push('UCE', 'UBS');
  for (const v of c.volumes) lines.push(`ID:${v.id}`, `MP:${v.mountPoint}`);
  lines.push('UBE');
  if (!bsd) return `${lines.join('\n')}\n`;
  lines.push('UNS', `IP:${bsd.net?.ip ?? ''}`, `GW:${bsd.net?.gateway ?? ''}`, `MSK:${bsd.net?.mask ?? ''}`, 'UNE', 'PAD');
  const text = `${lines.join('\n')}\n`;
  const size = Buffer.byteLength(text);
  return text + '\n'.repeat((SECTOR - (size % SECTOR)) % SECTOR);
}
