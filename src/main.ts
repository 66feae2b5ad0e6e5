// Entry: argv/env -> start | delete | serve | -info | -v. Each action is imported lazily so the
// short-lived paths load only what they use.
import { parseFlags } from './shim/flags.js';
import { processIo } from './shim/io.js';

async function main(): Promise<number> {
  const f = parseFlags(process.argv.slice(2));
  if (f.version) {
    (await import('./shim/info.js')).runVersion();
    return 0;
  }
  if (f.info) {
    (await import('./shim/info.js')).runInfo();
    return 0;
  }
  switch (f.action) {
    case 'start':
      await (await import('./shim/start.js')).runStart(f, processIo());
      return 0;
    case 'delete':
      await (await import('./shim/delete.js')).runDelete(f, processIo());
      return 0;
    case 'serve':
      await (await import('./shim/serve.js')).runServe(f);
      return -1;
    default:
      process.stderr.write(`containerd-shim-urunc-v2: unknown action ${JSON.stringify(f.action)} (want start, delete, -info or -v)\n`);
      return 1;
  }
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`containerd-shim-urunc-v2: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
