// The main job: a private containerd, this shim, and the project's hello unikernel run end to end
// through `ctr run --rm --runtime io.containerd.urunc.v2`: qemu boots the multiboot kernel inside
// the container's namespaces and cgroup, the guest prints on its serial console (the task's
// stdout) and ends the VM through isa-debug-exit; then everything is torn down.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Containerd, RUNTIME, type Version } from '../test/e2e/containerd.js';
import { GUESTS, buildGuests, unikernelImage } from '../test/fixtures/unikernel-images.js';
import { kvmUsable } from '../src/sys/libc.js';

const version = (process.env.DEMO_CONTAINERD ?? '1.6') as Version;
const IMAGE = 'docker.io/library/hello-uk:demo';
buildGuests();
// As a mewz guest: urunc gives mewz an exit device (isa-debug-exit at 0x501), through which the hello
// kernel ends the VM with its default status 3.
const tar = unikernelImage({ name: IMAGE, type: 'mewz', hypervisor: 'qemu', kernel: path.join(GUESTS, 'hello.elf'), describe: 'annotations', cmd: ['hello'] });
// The runtime config of this demo: microvm, and kvm when it works here (this machine's nested KVM
// rejects -cpu host's arch-capabilities MSR), else tcg.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'urunc-demo-'));
const config = path.join(dir, 'config.toml');
fs.writeFileSync(config, '[monitors.qemu]\naccelerator = "auto"\nmachine = "microvm"\ncpu = "host,-arch-capabilities"\n');
const c = await Containerd.start(version, { URUNC_CONFIG_PATH: config });
let code = 1;
try {
  console.log(`containerd ${version} at ${c.address}; accelerator ${kvmUsable() ? 'kvm' : 'tcg'}`);
  const imp = await c.ctr(['images', 'import', tar]);
  if (imp.code !== 0) throw new Error(imp.stderr);
  const args = ['run', '--rm', '--runtime', RUNTIME, IMAGE, 'demo'];
  console.log(`$ ctr ${args.join(' ')}`);
  const t0 = performance.now();
  const r = await c.ctr(args);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  const ms = Math.round(performance.now() - t0);
  // isa-debug-exit: qemu's status is (guest code << 1) | 1; the guest's code is 3.
  const ok = r.code === 7 && r.stdout.includes('Hello from a urunc-ts unikernel!');
  console.log(`task exit status ${r.code} (guest exit code ${(r.code - 1) / 2}) in ${ms} ms: ${ok ? 'OK' : 'FAILED'}`);
  code = ok ? 0 : 1;
} finally {
  await c.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
