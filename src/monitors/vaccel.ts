// vAccel: a guest's acceleration calls reach the vAccel RPC agent on the host over vsock, as urunc
// sets it up (unikontainers/vaccel.go resolveVAccelConfig, isValidVSockAddress, idToGuestCID,
// prepareVSockEnvironment; the VACCEL_RPC_ADDRESS env in unikontainers.go Exec). Asked for by the
// container's spec annotations only (never the image: it is a host feature), and only where
// `[runtime] vAccel = true` in the runtime config, as urunc refuses such a container otherwise.
//   qemu: a vhost-vsock device with the guest's CID; the guest talks to vsock://2:<port> (the host),
//         where the agent listens on AF_VSOCK; the monitor needs /dev/vhost-vsock.
//   firecracker: its hybrid vsock: the guest's connection to port P becomes a connection to the
//         unix socket <uds_path>_P, so the agent's socket unix://<dir>/vaccel.sock_<P> is bound into
//         the monitor root at /vaccel/vaccel.sock_<P> and uds_path is /vaccel/vaccel.sock; the guest
//         is told vsock://2:<P>.
import fs from 'node:fs';
import { invalidArgument } from '../errors.js';
import { rdevNumbers } from '../sys/dev.js';
import { bounded } from '../sys/off-loop.js';
import type { HypervisorName } from './unikernel-config.js';

export const VACCEL_ANNOTATION = 'com.urunc.unikernel.vAccel';
export const RPC_ADDRESS_ANNOTATION = 'com.urunc.unikernel.RPCAddress';
export const VACCEL_ENV = 'VACCEL_RPC_ADDRESS';
/** The directory in the monitor root holding the agent's socket and firecracker's own (urunc's VAccelMountPath). */
export const VACCEL_DIR = '/vaccel';

/** A port 1-65535 without leading zeros; a socket directory of plain absolute path parts (urunc's vAccelPortRe, vAccelSockDirRe). */
const PORT = '(?:[1-9]\\d{0,3}|[1-5]\\d{4}|6[0-4]\\d{3}|65[0-4]\\d{2}|655[0-2]\\d|6553[0-5])';
const ADDRESS: Partial<Record<HypervisorName, { re: RegExp; form: string }>> = {
  qemu: { re: new RegExp(`^vsock://2:(${PORT})$`), form: 'vsock://2:<port>' },
  firecracker: { re: new RegExp(`^unix://((?:/[A-Za-z0-9_-]+)+)/vaccel\\.sock_(${PORT})$`), form: 'unix:///<dir>/vaccel.sock_<port>' },
};

export interface VAccel {
  /** The guest's CID on its vsock device. */
  cid: number;
  /** What the guest is told in VACCEL_RPC_ADDRESS. */
  guestAddress: string;
  /** firecracker: the agent's unix socket on the host and where it is bound in the monitor root. */
  agentSocket: { host: string; inMonitor: string } | undefined;
}

/**
 * The guest's vsock CID from the container id: FNV-1a over the id's bytes mapped onto 3..2^32-2, as
 * urunc's current idToGuestCID (v0.8.0 summed the characters into 3..99, where a few containers
 * already collided); every process computes the same value without shared state.
 */
export function guestCid(id: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(id, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const min = 3;
  const max = 2 ** 32 - 2;
  return (h % (max - min + 1)) + min;
}

/**
 * The container's vAccel set-up from its spec annotations, or undefined when it asks for none.
 * Every error names the key and says what would be accepted.
 */
export function resolveVAccel(annotations: Record<string, string> | undefined, hypervisor: HypervisorName, id: string, enabled: boolean): VAccel | undefined {
  const kind = annotations?.[VACCEL_ANNOTATION];
  const address = annotations?.[RPC_ADDRESS_ANNOTATION] ?? '';
  // urunc's validateValues: an address without the switch is a mistake, not a default.
  if (kind === undefined) {
    if (address !== '') throw invalidArgument(`${RPC_ADDRESS_ANNOTATION} is set, but ${VACCEL_ANNOTATION} is not`);
    return undefined;
  }
  if (!enabled) throw invalidArgument(`${VACCEL_ANNOTATION} is set, but vAccel is disabled in the urunc configuration ([runtime] vAccel)`);
  if (kind !== 'vsock') throw invalidArgument(`${VACCEL_ANNOTATION}: only "vsock" is supported, got ${JSON.stringify(kind)}`);
  if (address === '') throw invalidArgument(`${VACCEL_ANNOTATION} is set, but ${RPC_ADDRESS_ANNOTATION} is not`);
  if (address.length > 4096) throw invalidArgument(`${RPC_ADDRESS_ANNOTATION} is longer than 4096 bytes`);
  const rule = ADDRESS[hypervisor];
  if (!rule) throw invalidArgument(`${VACCEL_ANNOTATION}: ${hypervisor} does not support vAccel (qemu and firecracker do)`);
  const m = rule.re.exec(address);
  if (!m) throw invalidArgument(`${RPC_ADDRESS_ANNOTATION}: ${JSON.stringify(address)} is not ${rule.form}, the form ${hypervisor} takes`);
  const cid = guestCid(id);
  if (hypervisor === 'qemu') return { cid, guestAddress: address, agentSocket: undefined };
  const port = m[2] as string;
  return { cid, guestAddress: `vsock://2:${port}`, agentSocket: { host: address.slice('unix://'.length), inMonitor: `${VACCEL_DIR}/vaccel.sock_${port}` } };
}

/**
 * The agent must be listening already (urunc's checkVAccelSocket): firecracker connects to it when
 * the guest does. The user's path may sit on any filesystem, so the stat runs off the event loop.
 */
export async function checkAgentSocket(v: VAccel | undefined): Promise<void> {
  if (!v?.agentSocket) return;
  const host = v.agentSocket.host;
  let st: fs.Stats;
  try {
    st = await bounded(`stat ${host}`, fs.promises.stat(host));
  } catch {
    throw invalidArgument(`${RPC_ADDRESS_ANNOTATION}: no vAccel agent socket at ${host}`);
  }
  if (!st.isSocket()) throw invalidArgument(`${RPC_ADDRESS_ANNOTATION}: ${host} is not a unix socket`);
}

/** The guest's env with VACCEL_RPC_ADDRESS set to the address: the first such entry removed, the new one appended (as urunc). */
export function withVAccelEnv(env: readonly string[], v: VAccel | undefined): string[] {
  if (!v) return [...env];
  const out = [...env];
  const i = out.findIndex((e) => e.startsWith(`${VACCEL_ENV}=`));
  if (i >= 0) out.splice(i, 1);
  out.push(`${VACCEL_ENV}=${v.guestAddress}`);
  return out;
}

/**
 * The host's vsock device nodes the monitor root gets (urunc's deviceFromHost); qemu cannot do
 * without /dev/vhost-vsock. (A stat in /dev, devtmpfs: nothing there waits on the outside world.)
 */
export function vsockDevices(hypervisor: HypervisorName): Array<{ path: string; type: string; major: number; minor: number }> {
  const out: Array<{ path: string; type: string; major: number; minor: number }> = [];
  for (const p of ['/dev/vsock', '/dev/vhost-vsock']) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      if (p === '/dev/vhost-vsock' && hypervisor === 'qemu') throw invalidArgument(`${VACCEL_ANNOTATION}: qemu's vsock device needs ${p} on the host (load the vhost_vsock module)`);
      continue;
    }
    if (!st.isCharacterDevice()) continue;
    out.push({ path: p, type: 'c', ...rdevNumbers(st.rdev) });
  }
  return out;
}
