// Image labels through the Docker Engine API (src/shim/docker-labels.ts), against a stand-in of
// Docker's API on a unix socket written from Docker's documented endpoints: the container list
// (GET /containers/json with an id filter) and the image (GET /images/{id}/json, Config.Labels).
// Mirrors the Docker fallback of urunc's shim (fetchDockerImageLabels), which reads the same labels.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DOCKER_SOCKET, dockerImageLabels, dockerSocket } from '../../src/shim/docker-labels.js';
import { containerNetns } from '../../src/task/launch.js';

const ID = 'c0ffee'.repeat(10) + 'abcd';
const IMAGE = `sha256:${'ab'.repeat(32)}`;

// Every stand-in a test made (a test may make two), closed and removed after it.
const made: Array<{ server: http.Server; dir: string }> = [];
afterEach(async () => {
  for (const { server, dir } of made.splice(0)) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A Docker API stand-in; `seen` records every path asked. */
async function fakeDocker(handle: (url: URL, res: http.ServerResponse) => void): Promise<{ socket: string; seen: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-docker-'));
  const socket = path.join(dir, 'docker.sock');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    handle(new URL(req.url ?? '/', 'http://docker'), res);
  });
  made.push({ server, dir });
  await new Promise<void>((r) => server.listen(socket, r));
  return { socket, seen };
}

const json = (res: http.ServerResponse, v: unknown, status = 200) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(v));
};

/** Docker's documented answers for one container whose image has these labels. */
const docker = (labels: Record<string, unknown> | null) => (url: URL, res: http.ServerResponse) => {
  if (url.pathname === '/containers/json') {
    const filters = JSON.parse(url.searchParams.get('filters') ?? '{}') as { id?: string[] };
    expect(url.searchParams.get('all')).toBe('1');
    return json(res, filters.id?.includes(ID) ? [{ Id: ID, Image: 'localhost/x:1', ImageID: IMAGE }] : []);
  }
  if (decodeURIComponent(url.pathname) === `/images/${IMAGE}/json`) return json(res, { Id: IMAGE, Config: { Labels: labels } });
  if (url.pathname.startsWith('/containers/')) return undefined; // inspect: Docker holds the container's lock while starting it
  return json(res, { message: 'not found' }, 404);
};

describe('Docker Engine API labels', () => {
  it('reads the image of the container from the container list, keeps com.urunc.unikernel.* string labels only', async () => {
    const { socket, seen } = await fakeDocker(docker({
      'com.urunc.unikernel.unikernelType': 'mewz', 'com.urunc.unikernel.binary': '/k', 'org.opencontainers.image.title': 'x', 'com.urunc.unikernel.bad': 3,
    }));
    expect(await dockerImageLabels(ID, socket)).toEqual({ 'com.urunc.unikernel.unikernelType': 'mewz', 'com.urunc.unikernel.binary': '/k' });
    expect(seen.map((u) => u.split('?')[0])).toEqual(['/containers/json', `/images/${encodeURIComponent(IMAGE)}/json`]);
  });

  it('no such container, an image without labels, and no daemon at the socket: no labels, no error', async () => {
    const { socket } = await fakeDocker(docker(null));
    expect(await dockerImageLabels('other', socket)).toEqual({});
    expect(await dockerImageLabels(ID, socket)).toEqual({});
    expect(await dockerImageLabels(ID, path.join(os.tmpdir(), 'no-such-docker.sock'))).toEqual({});
  });

  it('an error status and an answer over 1 MiB are errors', async () => {
    const { socket } = await fakeDocker((url, res) => (url.pathname === '/containers/json' ? json(res, [{ Id: ID, ImageID: IMAGE, pad: 'x'.repeat(2 << 20) }]) : json(res, {}, 500)));
    await expect(dockerImageLabels(ID, socket)).rejects.toThrow(/larger than 1048576 bytes/);
    const s2 = await fakeDocker((_url, res) => json(res, { message: 'boom' }, 500));
    await expect(dockerImageLabels(ID, s2.socket)).rejects.toThrow(/Docker answered 500/);
  });

  it('a daemon that never answers: the lookup gives up within its bound', async () => {
    const { socket } = await fakeDocker(() => undefined);
    const t0 = Date.now();
    await expect(dockerImageLabels(ID, socket)).rejects.toThrow(/aborted|timeout/i);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('the socket: DOCKER_HOST when it is unix://, else Docker\'s default', () => {
    expect(dockerSocket({ DOCKER_HOST: 'unix:///tmp/d.sock' })).toBe('/tmp/d.sock');
    expect(dockerSocket({ DOCKER_HOST: 'tcp://10.0.0.1:2375' })).toBe(DOCKER_SOCKET);
    expect(dockerSocket({})).toBe('/var/run/docker.sock');
  });
});

describe('the network namespace read at Start', () => {
  it('the spec\'s path (a pod\'s), else the waiting process\'s own; none on the host\'s network', () => {
    const spec = (ns: Array<{ type: string; path?: string }>) => ({ ociVersion: '1.1.0', linux: { namespaces: ns } });
    expect(containerNetns(spec([{ type: 'network', path: '/var/run/netns/cni-1' }]), 42)).toBe('/var/run/netns/cni-1');
    expect(containerNetns(spec([{ type: 'network' }, { type: 'mount' }]), 42)).toBe('/proc/42/ns/net');
    expect(containerNetns(spec([{ type: 'mount' }]), 42)).toBeUndefined();
  });
});
