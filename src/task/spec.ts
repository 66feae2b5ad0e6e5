// config.json at the edge: validated once with zod, then handed inward as a plain object.
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { invalidArgument, messageOf } from '../errors.js';
import { readSpecText } from '../sys/spec-file.js';

// zod/mini: the same validation as zod at a sixth of the bundle, on the daemon's start-up path.
const SpecSchema = z.looseObject({
  ociVersion: z.string(),
  process: z.optional(z.looseObject({
    terminal: z.optional(z.boolean()),
    args: z.optional(z.array(z.string())),
    env: z.optional(z.array(z.string())),
    cwd: z.optional(z.string()),
  })),
  root: z.optional(z.looseObject({ path: z.string(), readonly: z.optional(z.boolean()) })),
  annotations: z.optional(z.record(z.string(), z.string())),
  linux: z.optional(z.looseObject({ cgroupsPath: z.optional(z.string()) })),
});

export type Spec = z.infer<typeof SpecSchema>;

export { readSpecText };

export function readSpec(bundle: string): Spec {
  const file = path.join(bundle, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readSpecText(bundle));
  } catch (err: unknown) {
    throw invalidArgument(`read ${file}: ${messageOf(err)}`);
  }
  const parsed = SpecSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw invalidArgument(`invalid ${file}: ${first ? `${first.path.join('.')}: ${first.message}` : 'schema mismatch'}`);
  }
  return parsed.data;
}
