// Image labels through the Docker Engine API, for containers Docker runs on its default image store
// (overlay2): containerd then has no image for the container, so neither its labels nor a manifest
// can say "unikernel" (urunc reads them through Docker's API the same way). Read only, two GETs
// (the container's entry in Docker's container list, then its image), each answer capped in size,
// the whole lookup bounded in time.
// Docker's socket is DOCKER_HOST (unix:// only) or /var/run/docker.sock; no socket means no labels.
import http from 'node:http';
import { PREFIX } from '../monitors/unikernel-keys.js';

export const DOCKER_SOCKET = '/var/run/docker.sock';
const MAX_BYTES = 1 << 20;
const TIMEOUT_MS = 2_000;

export function dockerSocket(env: NodeJS.ProcessEnv = process.env): string {
  const host = env.DOCKER_HOST;
  return host?.startsWith('unix://') ? host.slice('unix://'.length) : DOCKER_SOCKET;
}

/** GET on Docker's socket: the parsed JSON, or undefined for 404 and for no daemon there. */
function get(socketPath: string, p: string, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: p, signal, headers: { Host: 'docker' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BYTES) {
          req.destroy(new Error(`Docker's answer to ${p} is larger than ${MAX_BYTES} bytes`));
          return;
        }
        chunks.push(d);
      });
      res.on('end', () => {
        if (res.statusCode === 404) return resolve(undefined);
        if (res.statusCode !== 200) return reject(new Error(`Docker answered ${res.statusCode} to ${p}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err: unknown) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? resolve(undefined) : reject(err)));
  });
}

/** com.urunc.unikernel.* from the config labels of the image of Docker's container `id`. */
export async function dockerImageLabels(id: string, socketPath = dockerSocket()): Promise<Record<string, string>> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  // The container list, not /containers/{id}/json: Docker holds the container's lock while it starts
  // it (and so while this Create runs), and inspect would wait for that lock until the timeout.
  const filters = encodeURIComponent(JSON.stringify({ id: [id] }));
  const list = await get(socketPath, `/containers/json?all=1&filters=${filters}`, signal);
  const entry = Array.isArray(list) ? (list as Array<{ Id?: unknown; ImageID?: unknown }>).find((c) => c.Id === id) : undefined;
  if (typeof entry?.ImageID !== 'string' || entry.ImageID === '') return {};
  const image = await get(socketPath, `/images/${encodeURIComponent(entry.ImageID)}/json`, signal) as { Config?: { Labels?: unknown } } | undefined;
  const labels = image?.Config?.Labels;
  if (!labels || typeof labels !== 'object') return {};
  return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => e[0].startsWith(PREFIX) && typeof e[1] === 'string'));
}
