// The main job: a private containerd, this shim, and a sample container run end to end through
// `ctr run --rm --runtime io.containerd.urunc.v2`, then everything torn down.
import { Containerd, RUNTIME, type Version } from '../test/e2e/containerd.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../test/fixtures/oci-image.js';
import path from 'node:path';
import { REPO } from '../test/e2e/containerd.js';

const version = (process.env.DEMO_CONTAINERD ?? '1.6') as Version;
const image = buildBusyboxImage(path.join(REPO, '.cache', 'images'));
const c = await Containerd.start(version);
let code = 1;
try {
  console.log(`containerd ${version} at ${c.address}`);
  const imp = await c.ctr(['images', 'import', image]);
  if (imp.code !== 0) throw new Error(imp.stderr);
  const args = ['run', '--rm', '--runtime', RUNTIME, BUSYBOX_IMAGE, 'demo', 'sh', '-c', 'echo "hello from $(hostname) via urunc-ts"; exit 0'];
  console.log(`$ ctr ${args.join(' ')}`);
  const t0 = performance.now();
  const r = await c.ctr(args);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  console.log(`exit status ${r.code} in ${Math.round(performance.now() - t0)} ms`);
  code = r.code;
} finally {
  await c.destroy();
}
process.exit(code);
