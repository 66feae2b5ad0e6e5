// The native programs this installation ships in bin/ (native/*.c, compiled by scripts/build.mjs),
// found from the running code: the bundle runs from dist/ or dist/chunks/, the tests from src/.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/** bin/<name> of this installation, or undefined when it is not there. */
export function installedBinary(name: string): string | undefined {
  for (const rel of [`../bin/${name}`, `../../bin/${name}`]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}
