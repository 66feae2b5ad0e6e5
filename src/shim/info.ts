// `-info` prints RuntimeInfo (containerd 2.2+ runs it on every Create for non-runc runtimes);
// `-v` prints the version the way Go shims do.
import fs from 'node:fs';
import { RuntimeInfo } from '../gen/containerd/types/introspection.js';

export const RUNTIME_NAME = 'io.containerd.urunc.v2';
export const VERSION = '0.1.0';
export const REVISION = process.env.URUNC_REVISION ?? 'dev';

export function runInfo(): void {
  const out = RuntimeInfo.encode({
    name: RUNTIME_NAME,
    version: { version: VERSION, revision: REVISION },
    options: undefined,
    features: undefined,
    annotations: {},
  }).finish();
  fs.writeSync(1, out);
}

export function runVersion(): void {
  fs.writeSync(1, `containerd-shim-urunc-v2:\n  Version: ${VERSION}\n  Revision: ${REVISION}\n  Node version: ${process.version}\n\n`);
}
