// containerd's shim argv, parsed the way Go's flag package does: -name value, -name=value,
// --name, bool flags without a value; the first non-flag word is the action.
export interface ShimFlags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  info: boolean;
  action: string;
  rest: string[];
}

const BOOL = new Set(['debug', 'v', 'version', 'info']);
const VALUE: Record<string, keyof ShimFlags> = {
  namespace: 'namespace',
  address: 'address',
  'publish-binary': 'publishBinary',
  id: 'id',
  bundle: 'bundle',
  socket: 'socket',
};

export function parseFlags(argv: readonly string[]): ShimFlags {
  const f: ShimFlags = {
    namespace: '', address: '', publishBinary: '', id: '', bundle: '', socket: '',
    debug: false, version: false, info: false, action: '', rest: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('-') || arg === '-' || f.action) {
      if (!f.action) f.action = arg;
      else f.rest.push(arg);
      continue;
    }
    if (arg === '--') {
      f.action = argv[i + 1] ?? '';
      f.rest = argv.slice(i + 2) as string[];
      break;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (BOOL.has(name)) {
      const on = inline === undefined ? true : inline === 'true' || inline === '1';
      if (name === 'debug') f.debug = on;
      else if (name === 'info') f.info = on;
      else f.version = on;
      continue;
    }
    const key = VALUE[name];
    if (!key) throw new Error(`flag provided but not defined: -${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`flag needs an argument: -${name}`);
    (f as unknown as Record<string, string>)[key] = value;
  }
  return f;
}

/** argv for re-running ourselves with the same containerd flags and another action. */
export function toArgs(f: ShimFlags, action: string): string[] {
  const out = ['-namespace', f.namespace, '-address', f.address, '-publish-binary', f.publishBinary, '-id', f.id];
  if (f.bundle) out.push('-bundle', f.bundle);
  if (f.debug) out.push('-debug');
  out.push(action);
  return out;
}
