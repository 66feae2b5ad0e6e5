// The hypervisor plug-ins by their urunc names.
import type { HypervisorName } from '../unikernel-config.js';
import { cloudHypervisor } from './cloud-hypervisor.js';
import { firecracker } from './firecracker.js';
import { qemu } from './qemu.js';
import { hvt, spt } from './solo5.js';
import { hyperlight } from './hyperlight.js';
import type { Hypervisor } from './types.js';

export const HYPERVISOR_PLUGINS: Record<HypervisorName, Hypervisor> = {
  qemu, firecracker, 'cloud-hypervisor': cloudHypervisor, hvt, spt, 'hyperlight-unikraft': hyperlight,
};
