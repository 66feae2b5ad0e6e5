// The image side of a container's unikernel config, read through containerd because ctr and
// nerdctl do not copy image annotations into the spec: the container's labels, then the image
// manifest's annotations (the manifest wins, as in urunc). Only com.urunc.unikernel.* is kept. A
// container Docker made gets its image's config labels from Docker's API (src/shim/docker-labels.ts)
// between the two: Docker copies them into neither the record nor, with its default store, any image.
import { GetContainerRequest, GetContainerResponse } from '../gen/containerd/services/containers/containers.js';
import { ReadContentRequest, ReadContentResponse } from '../gen/containerd/services/content/content.js';
import { GetImageRequest, GetImageResponse } from '../gen/containerd/services/images/images.js';
import { Code, ShimError } from '../errors.js';
import { PREFIX } from '../monitors/unikernel-keys.js';
import { ContainerdGrpc } from './containerd-grpc.js';
import { lazyOnce } from '../sys/lazy.js';

/** The label Docker puts on every containerd container record it makes. */
const DOCKER_BUNDLE_LABEL = 'com.docker/engine.bundle.path';
/** Docker's API client (node:http), loaded only for containers Docker made. */
const dockerLabels = lazyOnce(() => import('./docker-labels.js'));

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

interface Manifest {
  mediaType?: string;
  annotations?: Record<string, string>;
  manifests?: Array<{ digest: string; mediaType?: string; platform?: { os?: string; architecture?: string } }>;
}

const filter = (m: Record<string, string> | undefined) => Object.fromEntries(Object.entries(m ?? {}).filter(([k]) => k.startsWith(PREFIX)));

export function imageAnnotationReader(grpc: ContainerdGrpc): (namespace: string, id: string) => Promise<Record<string, string>> {
  const read = async (ns: string, digest: string): Promise<Manifest> => {
    const parts = await grpc.call(ns, '/containerd.services.content.v1.Content/Read', { digest, offset: 0n, size: 0n }, ReadContentRequest, ReadContentResponse);
    return JSON.parse(Buffer.concat(parts.map((p) => p.data)).toString('utf8')) as Manifest;
  };
  return async (ns, id) => {
    const [cr] = await grpc.call(ns, '/containerd.services.containers.v1.Containers/Get', { id }, GetContainerRequest, GetContainerResponse);
    const container = cr?.container;
    if (!container) throw new ShimError(Code.NotFound, `container ${id}`);
    // A container Docker made: its image's config labels are not in the record (nor, with Docker's
    // default store, any image): Docker's API has them.
    const out = container.labels[DOCKER_BUNDLE_LABEL] !== undefined ? { ...filter(container.labels), ...(await (await dockerLabels()).dockerImageLabels(id)) } : filter(container.labels);
    if (!container.image) return out;
    const [ir] = await grpc.call(ns, '/containerd.services.images.v1.Images/Get', { name: container.image }, GetImageRequest, GetImageResponse);
    const target = ir?.image?.target;
    if (!target) return out;
    let manifest = await read(ns, target.digest);
    if (INDEX_TYPES.includes(target.mediaType) || manifest.manifests) {
      const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
      const pick = manifest.manifests?.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ?? manifest.manifests?.[0];
      if (!pick) return out;
      manifest = await read(ns, pick.digest);
    }
    return { ...out, ...filter(manifest.annotations) };
  };
}
