// Where the runtime config is and the [shim] defaults: what every `start` needs, without the TOML
// parser and schema of src/monitors/runtime-config.ts, which load only when a file is there.

export const DEFAULT_CONFIG_PATH = '/etc/urunc/config.toml';

/** The config file: the options' ConfigPath, else $URUNC_CONFIG_PATH, else /etc/urunc/config.toml. */
export function configPathFor(optionPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return optionPath || env.URUNC_CONFIG_PATH || DEFAULT_CONFIG_PATH;
}

/** [shim] without a config file. */
export const SHIM_DEFAULTS = { grouping: 'node', linger_ms: 600_000, protocol: 'ttrpc', loop_block_ms: 2_000 } as const;
