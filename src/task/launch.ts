// The unikernel's launch at Start, the last of Create's plan, prepare, launch: what depends on the
// moment of start is read now, as urunc's reexec process reads it. Docker moves the container's
// interface into its network namespace after Create (28 from the daemon, 26 from its prestart hook),
// so the guest's network (tap, filters, address, gateway, mask, MTU) is found here, in the namespace
// of the process Create left waiting (runc's exec fifo), and the hypervisor's command line is
// written for bin/urunc-launch, which execs it when runc starts the container.
import type { Logger } from 'pino';
import { writeLaunchCommand, type OciSpec } from '../monitors/launcher.js';
import { recordNetwork, setupNetwork } from '../monitors/network.js';
import { checkRestoreShape } from '../monitors/checkpoint.js';
import type { UnikernelTask } from './setup-types.js';

export interface LaunchInput {
  namespace: string;
  id: string;
  bundle: string;
  spec: OciSpec;
  /** The process Create returned: in the container's namespaces, held before exec. */
  pid: number;
  log: Logger;
}

/** The container's network namespace: the spec's path (a pod's), else the waiting process's own; none on the host's network. */
export function containerNetns(spec: OciSpec, pid: number): string | undefined {
  const ns = spec.linux?.namespaces?.find((n) => n.type === 'network');
  if (!ns) return undefined;
  return ns.path || `/proc/${pid}/ns/net`;
}

export async function launchAtStart(u: UnikernelTask, o: LaunchInput): Promise<string[]> {
  const netns = containerNetns(o.spec, o.pid);
  const net = netns ? await setupNetwork({
    netns, namespace: o.namespace, id: o.id, user: o.spec.process?.user ?? { uid: 0, gid: 0 },
    staticMode: o.spec.annotations?.['io.kubernetes.cri.container-name'] === 'user-container',
    record: (r) => recordNetwork(o.bundle, r),
  }) : undefined;
  if (net) o.log.info({ tap: net.record.tap, mode: net.record.mode, ip: net.guest.ip }, 'guest network');
  const found = net && { tap: net.record.tap, mtu: net.mtu, guest: net.guest };
  const shape = u.restoreShape;
  return writeLaunchCommand(u.plan, found, shape && ((argv) => checkRestoreShape(shape, argv)));
}
