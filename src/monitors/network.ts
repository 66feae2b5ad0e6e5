// Guest networking inside the container's network namespace (the pod's, set up by CNI), with
// urunc's two modes and none of its one-guest-per-netns limits:
//  - dynamic: the guest takes the pod interface's IP, mask, gateway and MAC; tc ingress + u32 +
//    mirred redirect every packet between the pod interface and the guest's tap, as urunc does
//    (pkg/network, the match-all redirect);
//  - static: the guest gets a private /30 (172.16.<k>.2, gateway .1 on its tap) and reaches out
//    through NAT on the pod interface (MASQUERADE into the reserved ports), with forwarding on.
//    Used for knative's `user-container` (as urunc) and for every further guest in a namespace
//    whose dynamic slot is taken, so several unikernels share one pod.
//  - the pass-through: only while a dynamic guest and at least one static guest share a namespace,
//    TCP/UDP to the reserved NAT ports stay with the namespace's stack (the static guests' NAT
//    replies) and ARP is mirrored to both. It costs the dynamic guest those 4096 ports, so it is
//    installed when a second guest needs it and removed when the last static guest goes
//    (syncPassThrough, run after every set-up and release; the filters belong to the namespace).
// Tap names derive from the container, so they are unique; every device, filter and rule made is
// recorded first and removed by release, which never touches what others made. Commands run as
// `nsenter --net=<path> -- ip|tc|iptables ...`, with argument arrays; the ip and tc steps of one
// set-up or release go as one `ip -batch -` / `tc -batch -` each (every spawn costs 10-20 ms),
// when every word is a plain token.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { messageOf } from '../errors.js';
import { runChecked } from '../sys/spawn.js';
import { STATE_FILE, writeAtomic } from '../rootfs/state.js';
import { readMountInfo } from '../rootfs/mounts.js';
import type { GuestNet } from './guests/index.js';

export const NAT_PORTS = { from: 61440, to: 65535 };
/** tc filter priorities this runtime owns on the pod interface (one dynamic guest per namespace). */
const PREF = { passTcp: 49100, passUdp: 49101, arp: 49102, redirect: 49103 } as const;
const PASS_PREFS = [PREF.passTcp, PREF.passUdp, PREF.arp] as const;
const STATIC_NET = '172.16';

export interface NetRecord {
  netns: string;
  /** The namespace's inode: the path may be /proc/<pause pid>/ns/net, gone (or reused) before the namespace is. */
  netnsIno?: number;
  tap: string;
  mode: 'dynamic' | 'static';
  podIf: string;
  /** iptables -t nat rule specs added (deleted with -D). */
  nat: string[][];
}

export interface NetPlan {
  record: NetRecord;
  /** What the guest is configured with; its MAC is also the NIC's. */
  guest: GuestNet;
  /** The tap's MTU (the pod interface's), which the NIC advertises to the guest. */
  mtu: number;
}

interface IpAddr { ifname: string; address: string; mtu: number; addr_info?: Array<{ family: string; local: string; prefixlen: number }> }
interface IpRoute { dst: string; gateway?: string; dev: string }

const run = (netns: string, argv: string[], input?: string): Promise<string> =>
  runChecked(argv.join(' '), 'nsenter', [`--net=${netns}`, '--', ...argv], { input, timeoutMs: 15_000 });

/** A word ip's and tc's batch parsers take as it is (no blank, quote, backslash or '#'). */
const PLAIN = /^[A-Za-z0-9_.:@%+=/-]+$/;

/**
 * Several `ip` or `tc` commands in one spawn (`-batch -`, stopping at the first failure), or one
 * spawn each when a word is not a plain token (an interface name read from a namespace or a record).
 */
async function runAll(netns: string, tool: 'ip' | 'tc', cmds: string[][]): Promise<void> {
  if (cmds.length === 0) return;
  if (cmds.length === 1 || !cmds.every((c) => c.every((w) => PLAIN.test(w)))) {
    for (const c of cmds) await run(netns, [tool, ...c]);
    return;
  }
  await run(netns, [tool, '-batch', '-'], cmds.map((c) => `${c.join(' ')}\n`).join(''));
}

export const tapName = (namespace: string, id: string) => `ukt${createHash('sha256').update(`${namespace}/${id}`).digest('hex').slice(0, 10)}`;
const macFor = (tap: string) => `02:${createHash('sha256').update(tap).digest('hex').slice(0, 10).match(/../g)?.join(':')}`;

export function prefixToMask(prefix: number): string {
  const bits = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (bits >>> s) & 0xff).join('.');
}

/** The namespace's interface with an IPv4 address and the default route (CNI's eth0), or undefined; and every IPv4 link. */
async function podInterface(netns: string): Promise<{ pod: { name: string; ip: string; prefix: number; gateway: string; mac: string; mtu: number } | undefined; links: IpAddr[] }> {
  const routes = JSON.parse(await run(netns, ['ip', '-j', '-4', 'route', 'show', 'default'])) as IpRoute[];
  const def = routes.find((r) => r.gateway);
  if (!def) return { pod: undefined, links: [] };
  // All families: with -4, ip leaves out the link's MAC.
  const links = JSON.parse(await run(netns, ['ip', '-j', 'addr', 'show'])) as IpAddr[];
  const link = links.find((l) => l.ifname === def.dev);
  const v4 = link?.addr_info?.find((a) => a.family === 'inet');
  if (!link || !v4) return { pod: undefined, links };
  return { pod: { name: link.ifname, ip: v4.local, prefix: v4.prefixlen, gateway: def.gateway as string, mac: link.address, mtu: link.mtu }, links };
}

async function hasDynamicGuest(netns: string, podIf: string): Promise<boolean> {
  const out = await run(netns, ['tc', 'filter', 'show', 'dev', podIf, 'ingress']).catch(() => '');
  return new RegExp(`pref ${PREF.redirect} `).test(out);
}

async function usedStaticIndexes(netns: string, known?: IpAddr[]): Promise<Set<number>> {
  const links = known ?? JSON.parse(await run(netns, ['ip', '-j', '-4', 'addr', 'show'])) as IpAddr[];
  const used = new Set<number>();
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      const m = new RegExp(`^${STATIC_NET.replace('.', '\\.')}\\.(\\d+)\\.1$`).exec(a.local);
      if (m) used.add(Number(m[1]));
    }
  }
  return used;
}

/**
 * Plans and creates the guest's network in `netns`; `record` is called with what will be made
 * before it is made. Undefined when the namespace has no pod interface (no CNI, e.g. plain ctr).
 */
type SetupInput = {
  netns: string;
  namespace: string;
  id: string;
  staticMode: boolean;
  user: { uid: number; gid: number };
  record: (r: NetRecord) => void;
};

/** Set-ups in one namespace run one at a time (a pod's containers share the daemon): the dynamic slot and the /30s are read, then taken. */
const netnsQueues = new Map<number, Promise<unknown>>();

export async function setupNetwork(o: SetupInput): Promise<NetPlan | undefined> {
  const ino = inoOf(o.netns);
  if (ino === undefined) return undefined;
  const prev = netnsQueues.get(ino) ?? Promise.resolve();
  const mine = prev.catch(() => undefined).then(() => setupNetworkNow(o));
  netnsQueues.set(ino, mine);
  try {
    return await mine;
  } finally {
    if (netnsQueues.get(ino) === mine) netnsQueues.delete(ino);
  }
}

async function setupNetworkNow(o: SetupInput): Promise<NetPlan | undefined> {
  if (!fs.existsSync(o.netns)) return undefined;
  const { pod, links } = await podInterface(o.netns);
  if (!pod) return undefined;
  const tap = tapName(o.namespace, o.id);
  const dynamic = !o.staticMode && !(await hasDynamicGuest(o.netns, pod.name));
  const rec: NetRecord = { netns: o.netns, netnsIno: fs.statSync(o.netns).ino, tap, mode: dynamic ? 'dynamic' : 'static', podIf: pod.name, nat: [] };
  let guest: GuestNet;
  if (dynamic) {
    guest = { ip: pod.ip, mask: prefixToMask(pod.prefix), gateway: pod.gateway, mac: pod.mac };
  } else {
    const used = await usedStaticIndexes(o.netns, links);
    let k = 1;
    while (used.has(k)) k++;
    if (k > 254) throw new Error('no free static guest subnet in this network namespace');
    const src = `${STATIC_NET}.${k}.0/30`;
    for (const proto of ['tcp', 'udp']) rec.nat.push(['POSTROUTING', '-s', src, '-o', pod.name, '-p', proto, '-j', 'MASQUERADE', '--to-ports', `${NAT_PORTS.from}-${NAT_PORTS.to}`]);
    rec.nat.push(['POSTROUTING', '-s', src, '-o', pod.name, '-j', 'MASQUERADE']);
    guest = { ip: `${STATIC_NET}.${k}.2`, mask: '255.255.255.252', gateway: `${STATIC_NET}.${k}.1`, mac: macFor(tap) };
  }
  o.record(rec);

  await runAll(o.netns, 'ip', [
    ['tuntap', 'add', 'dev', tap, 'mode', 'tap', 'vnet_hdr', 'user', String(o.user.uid), 'group', String(o.user.gid)],
    ['link', 'set', 'dev', tap, 'mtu', String(pod.mtu), 'up'],
    ...(dynamic ? [] : [['addr', 'add', `${guest.gateway}/30`, 'dev', tap]]),
  ]);
  if (dynamic) {
    const f = ['filter', 'add', 'dev', pod.name, 'parent', 'ffff:'];
    await runAll(o.netns, 'tc', [
      ['qdisc', 'replace', 'dev', pod.name, 'ingress'],
      [...f, 'prio', String(PREF.redirect), 'protocol', 'all', 'u32', 'match', 'u8', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', tap],
      ['qdisc', 'add', 'dev', tap, 'ingress'],
      ['filter', 'add', 'dev', tap, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u8', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', pod.name],
    ]);
  } else {
    await run(o.netns, ['tee', '/proc/sys/net/ipv4/ip_forward'], '1\n');
    for (const rule of rec.nat) await run(o.netns, ['iptables', '-w', '5', '-t', 'nat', '-A', ...rule]);
  }
  // A dynamic guest added no static subnet: the listing from before still counts them.
  await syncPassThrough(o.netns, pod.name, dynamic ? links : undefined);
  return { record: rec, guest, mtu: pod.mtu };
}

/**
 * The pass-through filters exist exactly while the namespace has a dynamic guest and a static one:
 * replies to the static guests' NAT (TCP/UDP to the reserved ports) stay with the namespace's
 * stack (a classid ends classification before the redirect), and ARP reaches both.
 */
async function syncPassThrough(netns: string, podIf: string, links?: IpAddr[]): Promise<void> {
  const shown = await run(netns, ['tc', 'filter', 'show', 'dev', podIf, 'ingress']).catch(() => '');
  const has = (pref: number) => new RegExp(`pref ${pref} `).test(shown);
  const want = has(PREF.redirect) && (await usedStaticIndexes(netns, links)).size > 0;
  if (want) {
    const dynTap = /Egress Redirect to device ([^)\s]+)/.exec(shown)?.[1];
    const f = ['tc', 'filter', 'add', 'dev', podIf, 'parent', 'ffff:'];
    if (!has(PREF.passTcp)) {
      await run(netns, [...f, 'prio', String(PREF.passTcp), 'protocol', 'ip', 'u32', 'match', 'ip', 'protocol', '6', '0xff',
        'match', 'ip', 'dport', String(NAT_PORTS.from), '0xf000', 'flowid', 'ffff:1']);
    }
    if (!has(PREF.passUdp)) {
      await run(netns, [...f, 'prio', String(PREF.passUdp), 'protocol', 'ip', 'u32', 'match', 'ip', 'protocol', '17', '0xff',
        'match', 'ip', 'dport', String(NAT_PORTS.from), '0xf000', 'flowid', 'ffff:1']);
    }
    if (!has(PREF.arp) && dynTap) {
      await run(netns, [...f, 'prio', String(PREF.arp), 'protocol', 'arp', 'u32', 'match', 'u8', '0', '0', 'action', 'mirred', 'egress', 'mirror', 'dev', dynTap]);
    }
  } else {
    for (const pref of PASS_PREFS) {
      if (has(pref)) await run(netns, ['tc', 'filter', 'del', 'dev', podIf, 'parent', 'ffff:', 'prio', String(pref)]).catch(() => undefined);
    }
  }
}

// Synchronous: nsfs entries (pinned namespaces, /proc/<pid>/ns/net) are stat'ed from the inode the kernel holds, with no filesystem behind them.
const inoOf = (p: string): number | undefined => {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
};

/**
 * A path to the recorded namespace now: the recorded path if it still is that namespace, else a
 * pinned one (CNI's /var/run/netns) or any process's with the same inode; undefined once it is gone.
 */
export async function findNetns(r: Pick<NetRecord, 'netns' | 'netnsIno'>): Promise<string | undefined> {
  if (r.netnsIno === undefined) return fs.existsSync(r.netns) ? r.netns : undefined;
  if (inoOf(r.netns) === r.netnsIno) return r.netns;
  const candidates: string[] = [];
  for (const dir of ['/var/run/netns', '/run/netns']) {
    try {
      candidates.push(...fs.readdirSync(dir).map((n) => `${dir}/${n}`));
    } catch {
      // none pinned here
    }
  }
  // Namespaces pinned anywhere else (Docker's <exec-root>/netns/<id>): nsfs mounts in our mount table.
  try {
    candidates.push(...(await readMountInfo()).filter((m) => m.fstype === 'nsfs').map((m) => m.mountPoint));
  } catch {
    // no mount table: the other candidates only
  }
  candidates.push(...fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map((d) => `/proc/${d}/ns/net`));
  return candidates.find((p) => inoOf(p) === r.netnsIno);
}

/** The guest network's record in the bundle, written before anything is made and removed once all is released. */
export const NET_STATE_FILE = 'urunc-net.json';

export function recordNetwork(bundle: string, rec: NetRecord): void {
  writeAtomic(path.join(bundle, NET_STATE_FILE), JSON.stringify(rec));
}

/** The record's fields, or undefined for a file that is not one (never trusted blindly: it drives commands). */
function asNetRecord(v: unknown): NetRecord | undefined {
  const r = v as Partial<NetRecord> | undefined;
  const ok = r && typeof r.netns === 'string' && typeof r.tap === 'string' && /^ukt[0-9a-f]{10}$/.test(r.tap)
    && (r.mode === 'dynamic' || r.mode === 'static') && typeof r.podIf === 'string' && Array.isArray(r.nat);
  return ok ? (r as NetRecord) : undefined;
}

/**
 * Releases the guest network a bundle records (its own file, or the `net` field of the rootfs state
 * file that bundles made before the network moved to Start still carry). Idempotent; the record
 * stays when a step fails, for the next caller.
 */
export async function releaseNetworkOf(bundle: string): Promise<void> {
  const file = path.join(bundle, NET_STATE_FILE);
  let rec: NetRecord | undefined;
  try {
    rec = asNetRecord(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: ${messageOf(err)}`);
  }
  if (!rec) {
    try {
      rec = asNetRecord((JSON.parse(fs.readFileSync(path.join(bundle, STATE_FILE), 'utf8')) as { net?: unknown }).net);
    } catch {
      // no rootfs state file, or not one of ours: no legacy record
    }
  }
  if (rec) await releaseNetwork(rec);
  fs.rmSync(file, { force: true });
}

/** Removes what setupNetwork recorded; idempotent, and a gone namespace means nothing is left. */
export async function releaseNetwork(rec: NetRecord): Promise<void> {
  const held = await holdNetns(rec);
  if (!held) return;
  try {
    await releaseIn({ ...rec, netns: held.path });
  } finally {
    fs.closeSync(held.fd);
  }
}

/**
 * The recorded namespace, held open for the release: its path may be /proc/<pid>/ns/net of a
 * process that dies meanwhile (CRI's pause, killed by its own `delete` at the same moment after a
 * shim crash), and then every command would miss it. Held by an fd of ours, it is reached as
 * /proc/<our pid>/fd/<fd> until the release is done. Undefined once the namespace is gone.
 */
async function holdNetns(r: Pick<NetRecord, 'netns' | 'netnsIno'>): Promise<{ fd: number; path: string } | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const p = await findNetns(r);
    if (!p) return undefined;
    let fd: number;
    try {
      fd = fs.openSync(p, 'r');
    } catch {
      continue; // gone between the look and the open: look again (a pinned path may still hold it)
    }
    if (r.netnsIno === undefined || fs.fstatSync(fd).ino === r.netnsIno) return { fd, path: `/proc/${process.pid}/fd/${fd}` };
    fs.closeSync(fd);
  }
  return undefined;
}

async function releaseIn(r: NetRecord): Promise<void> {
  const errors: string[] = [];
  // "Already gone" is benign for the device, filter or rule, never for the namespace itself (nsenter's own error).
  const quiet = (p: Promise<unknown>, what: string, benign: RegExp) => p.catch((err: unknown) => {
    const msg = messageOf(err);
    if (/nsenter:/.test(msg) || !benign.test(msg)) errors.push(`${what}: ${msg}`);
  });
  const gone = /Cannot find device|No such file or directory|does not exist|not find|not found|Bad rule|No chain\/target\/match|Cannot find specified qdisc|Invalid handle/i;
  if (r.mode === 'dynamic') {
    // Only the filters there are (the redirect and any pass-through: the namespace keeps no dynamic guest).
    const shown = await run(r.netns, ['tc', 'filter', 'show', 'dev', r.podIf, 'ingress']).catch(() => '');
    const prefs = [PREF.redirect, ...PASS_PREFS].filter((pref) => new RegExp(`pref ${pref} `).test(shown));
    await quiet(runAll(r.netns, 'tc', prefs.map((pref) => ['filter', 'del', 'dev', r.podIf, 'parent', 'ffff:', 'prio', String(pref)])), 'tc filter', gone);
  }
  for (const rule of r.nat) await quiet(run(r.netns, ['iptables', '-w', '5', '-t', 'nat', '-D', ...rule]), 'iptables', gone);
  await quiet(run(r.netns, ['ip', 'link', 'del', 'dev', r.tap]), 'tap', gone);
  // (A dynamic guest's release took the pass-through with it above: with no dynamic guest there is none to keep.)
  if (r.mode === 'static') await quiet(syncPassThrough(r.netns, r.podIf), 'pass-through', gone);
  // The pod interface's ingress qdisc goes only when no filter of anyone is left on it.
  const left = await run(r.netns, ['tc', 'filter', 'show', 'dev', r.podIf, 'ingress']).catch(() => '');
  if (r.mode === 'dynamic' && left.trim() === '') await quiet(run(r.netns, ['tc', 'qdisc', 'del', 'dev', r.podIf, 'ingress']), 'tc qdisc', gone);
  if (errors.length > 0) throw new Error(errors.join('; '));
}

/** Where knative's queue-proxy finds the user container's guest: the first static guest (urunc's QueueProxyRedirectIP). */
export const QUEUE_PROXY_REDIRECT_IP = `${STATIC_NET}.1.2`;

/**
 * knative's queue-proxy env, as urunc rewrites it (handleQueueProxy): its readiness probe's "host"
 * values point at the static guest, and REDIRECT_IP names it. The probe entry moves to the end of
 * the list; nothing else changes.
 */
export function queueProxyEnv(env: readonly string[]): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e.startsWith('SERVING_READINESS_PROBE'));
  if (i >= 0) {
    const [probe] = out.splice(i, 1);
    out.push((probe as string).replace(/"host"\s*:\s*"[^"]+"/g, `"host":"${QUEUE_PROXY_REDIRECT_IP}"`));
  }
  out.push(`REDIRECT_IP=${QUEUE_PROXY_REDIRECT_IP}`);
  return out;
}
