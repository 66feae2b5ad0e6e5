// containerd's identifier rules (pkg/identifiers): alphanumerics joined by single '.', '_' or '-',
// at most 76 characters. Task and exec ids become file and directory names; anything else is refused.
import { invalidArgument } from '../errors.js';

const IDENTIFIER = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;
const MAX_LENGTH = 76;

export function validateId(kind: 'task' | 'exec', id: string): void {
  if (id.length === 0) throw invalidArgument(`${kind} id must not be empty`);
  if (id.length > MAX_LENGTH) throw invalidArgument(`${kind} id ${JSON.stringify(id.slice(0, 80))}... is longer than ${MAX_LENGTH} characters`);
  if (!IDENTIFIER.test(id)) throw invalidArgument(`${kind} id ${JSON.stringify(id)} must match ${IDENTIFIER.source}`);
}
