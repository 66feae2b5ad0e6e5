// Writes OCI image-layout tars without a registry: one gzip layer per directory tree, a config,
// a manifest, and index.json naming the image (what `ctr images import` takes), plus the
// docker-archive manifest.json over the same blobs (what Docker's default image store loads).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

export interface ImageSpec {
  name: string;
  /** Directories whose contents become the layers, bottom first. */
  layers: string[];
  config?: { Cmd?: string[]; Entrypoint?: string[]; Env?: string[]; Labels?: Record<string, string>; User?: string; WorkingDir?: string };
  annotations?: Record<string, string>;
  /** Keep holes in sparse files (pax sparse entries, which containerd reads as regular files). */
  sparse?: boolean;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function writeOciImage(spec: ImageSpec, outTar: string): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-'));
  try {
    const blobs = path.join(work, 'blobs', 'sha256');
    fs.mkdirSync(blobs, { recursive: true });
    const put = (b: Buffer): { digest: string; size: number } => {
      const h = sha(b);
      fs.writeFileSync(path.join(blobs, h), b);
      return { digest: `sha256:${h}`, size: b.length };
    };
    const layers = spec.layers.map((dir) => {
      // Deterministic layer: sorted names, fixed owner and mtime (and pax headers without times or pids).
      const sparse = spec.sparse ? ['--sparse', '--format=posix', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime'] : [];
      const tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', ...sparse, '-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
      const gz = zlib.gzipSync(tar, { level: 1 });
      return { diffId: `sha256:${sha(tar)}`, ...put(gz) };
    });
    const config = put(Buffer.from(JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...spec.config },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    })));
    const manifest = put(Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    })));
    fs.writeFileSync(path.join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(path.join(work, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{
        mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
        annotations: { 'io.containerd.image.name': spec.name, 'org.opencontainers.image.ref.name': spec.name.split(':').pop() },
      }],
    }));
    fs.writeFileSync(path.join(work, 'manifest.json'), JSON.stringify([{
      Config: `blobs/sha256/${config.digest.slice(7)}`, RepoTags: [spec.name], Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    }]));
    fs.mkdirSync(path.dirname(outTar), { recursive: true });
    execFileSync('tar', ['-C', work, '-cf', outTar, 'oci-layout', 'index.json', 'manifest.json', 'blobs']);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export const BUSYBOX_IMAGE = 'docker.io/library/busybox:urunc-test';
const APPLETS = ['sh', 'echo', 'sleep', 'cat', 'ls', 'ps', 'true', 'false', 'env', 'id', 'hostname', 'tty', 'stty', 'wc', 'head', 'seq', 'yes', 'kill', 'mkdir', 'touch', 'rm', 'tail', 'dd'];
/** Part of every cached image's name: bumped when the archive's layout changes (3: manifest.json for Docker). */
export const LAYOUT_VERSION = 3;

/**
 * Directories of one small file each (/layers/L<i>), to stack as extra layers: fresh temporary ones
 * the caller removes, or the same paths under `parent` every time (for content-keyed caches).
 */
export function fillerLayers(n: number, parent?: string): string[] {
  return Array.from({ length: n }, (_, i) => {
    const d = parent ? path.join(parent, `layer-${i + 1}`) : fs.mkdtempSync(path.join(os.tmpdir(), 'layer-'));
    fs.mkdirSync(path.join(d, 'layers'), { recursive: true });
    fs.writeFileSync(path.join(d, 'layers', `L${i + 1}`), `${i + 1}\n`);
    return d;
  });
}

/**
 * A busybox image built from Debian's busybox-static, plus `extraLayers` filler layers above it
 * (under another name); cached by the binary's size and mtime.
 */
export function buildBusyboxImage(cacheDir: string, extraLayers = 0, name = BUSYBOX_IMAGE): string {
  const bb = '/bin/busybox';
  const st = fs.statSync(bb);
  const out = path.join(cacheDir, `busybox-v${LAYOUT_VERSION}-${st.size}-${Math.trunc(st.mtimeMs)}${extraLayers ? `-x${extraLayers}` : ''}.tar`);
  if (fs.existsSync(out)) return out;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bbroot-'));
  const fillers = fillerLayers(extraLayers);
  try {
    for (const d of ['bin', 'tmp', 'etc', 'proc', 'sys', 'dev']) fs.mkdirSync(path.join(root, d));
    fs.copyFileSync(bb, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeOciImage({ name, layers: [root, ...fillers], config: { Cmd: ['sh'] } }, `${out}.tmp`);
    fs.renameSync(`${out}.tmp`, out);
    return out;
  } finally {
    for (const d of [root, ...fillers]) fs.rmSync(d, { recursive: true, force: true });
  }
}
