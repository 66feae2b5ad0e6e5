// CLI: package a unikernel as an OCI image tar for `ctr images import`.
//   tsx scripts/build-image.ts --name NAME --out FILE.tar --type unikraft --hypervisor qemu \
//     --kernel PATH [--initrd PATH] [--urunc-json] [--set key=value]... [--env K=V]... [--cmd ARG]...
import { parseArgs } from 'node:util';
import { buildUnikernelImage } from './lib/unikernel-image.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string' }, out: { type: 'string' }, type: { type: 'string' }, hypervisor: { type: 'string', default: 'qemu' },
    kernel: { type: 'string' }, initrd: { type: 'string' }, 'urunc-json': { type: 'boolean', default: false },
    set: { type: 'string', multiple: true, default: [] }, env: { type: 'string', multiple: true, default: [] },
    cmd: { type: 'string', multiple: true }, layer: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.name || !values.out || !values.type || !values.kernel) {
  process.stderr.write('usage: build-image --name NAME --out FILE.tar --type TYPE --kernel PATH [--hypervisor qemu] [--initrd PATH] [--urunc-json] [--set k=v] [--env K=V] [--cmd ARG] [--layer DIR]\n');
  process.exit(2);
}
const extra: Record<string, string> = {};
for (const kv of values.set) {
  const i = kv.indexOf('=');
  if (i <= 0) throw new Error(`--set ${kv}: expected key=value`);
  extra[kv.slice(0, i)] = kv.slice(i + 1);
}
buildUnikernelImage({
  name: values.name, type: values.type, hypervisor: values.hypervisor, kernel: values.kernel, initrd: values.initrd, extra,
  describe: values['urunc-json'] ? 'urunc.json' : 'annotations', env: values.env.length ? values.env : undefined, cmd: values.cmd, layers: values.layer,
}, values.out);
process.stdout.write(`${values.out}\n`);
