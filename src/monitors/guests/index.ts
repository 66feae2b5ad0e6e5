// The guest types by their urunc names. One file per type; the launcher and the hypervisor
// plug-ins only see GuestInput and GuestOutput (./types.ts).
import type { UnikernelType } from '../unikernel-config.js';
import { freebsd } from './freebsd.js';
import { hermit } from './hermit.js';
import { includeos } from './includeos.js';
import { linux } from './linux.js';
import { mewz } from './mewz.js';
import { mirage } from './mirage.js';
import { rumprun } from './rumprun.js';
import type { GuestInput, GuestOutput, GuestType } from './types.js';
import { unikraft } from './unikraft.js';

export type { GuestInput, GuestNet, GuestOutput, GuestRootfs } from './types.js';
export { maskToCidr } from './types.js';

export const GUEST_TYPES: Record<UnikernelType, GuestType> = { linux, unikraft, rumprun, mirage, mewz, hermit, includeos, freebsd };

export function buildGuest(type: UnikernelType, input: GuestInput): GuestOutput {
  return GUEST_TYPES[type].build(input);
}

/** A guest type's disk support (urunc's SupportsBlock and SupportsFS): its root, and the filesystems it mounts from a disk (a root or a volume). */
export function guestBlockOf(type: UnikernelType): { root: boolean; fs: readonly string[] } {
  return { root: GUEST_TYPES[type].blockRoot, fs: GUEST_TYPES[type].blockFs };
}

/** The shared-filesystem roots a guest type can mount (urunc's SupportsFS). */
export function sharedFsOf(type: UnikernelType): ReadonlyArray<'9pfs' | 'virtiofs'> {
  return GUEST_TYPES[type].sharedFs;
}
