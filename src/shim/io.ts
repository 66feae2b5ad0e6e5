// Where a short-lived action (`start`, `delete`) reads and writes: the process's own cwd, env and
// stdio when containerd ran node on it, or one forwarded invocation's when the warm daemon runs
// it for the native front (src/shim/front.ts).
import fs from 'node:fs';

export interface ActionIo {
  /** True when the warm daemon runs the action for the native front. */
  forwarded: boolean;
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdin(): Buffer;
  stdout(data: Uint8Array | string): void;
  stderr(text: string): void;
}

export function processIo(): ActionIo {
  return {
    forwarded: false,
    cwd: process.cwd(),
    env: process.env,
    stdin: () => {
      try {
        return fs.readFileSync(0);
      } catch {
        return Buffer.alloc(0); // no stdin (closed): no options
      }
    },
    stdout: (data) => void fs.writeSync(1, typeof data === 'string' ? Buffer.from(data) : data),
    stderr: (text) => void process.stderr.write(text),
  };
}

/** Thrown by a forwarded action before it changes anything: the front runs the cold path instead. */
export class ColdPathNeeded extends Error {
  constructor() {
    super('cold path needed');
  }
}
