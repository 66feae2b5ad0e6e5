// config.json at the edge: validated once with zod, then handed inward as a plain object.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { invalidArgument, messageOf } from '../errors.js';

const SpecSchema = z.looseObject({
  ociVersion: z.string(),
  process: z.looseObject({
    terminal: z.boolean().optional(),
    args: z.array(z.string()).optional(),
    env: z.array(z.string()).optional(),
    cwd: z.string().optional(),
  }).optional(),
  root: z.looseObject({ path: z.string(), readonly: z.boolean().optional() }).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  linux: z.looseObject({ cgroupsPath: z.string().optional() }).optional(),
});

export type Spec = z.infer<typeof SpecSchema>;

export function readSpec(bundle: string): Spec {
  const file = path.join(bundle, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
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
