// A CRI client on @grpc/grpc-js, doing what crictl (not packaged here) does: RuntimeService calls
// on containerd's main socket with the ts-proto codecs of proto/cri.
import * as grpc from '@grpc/grpc-js';
import * as cri from '../../src/gen/cri/runtime/v1/api.js';

interface Codec<T> {
  encode(m: T): { finish(): Uint8Array };
  decode(b: Uint8Array): T;
  fromPartial(p: object): T;
}

export class CriClient {
  private readonly client: grpc.Client;

  constructor(socket: string) {
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  private call<Req, Res>(method: string, req: object, reqT: Codec<Req>, resT: Codec<Res>, timeoutMs = 60_000): Promise<Res> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/runtime.v1.RuntimeService/${method}`,
        (m: Req) => Buffer.from(reqT.encode(m).finish()),
        (b: Buffer) => resT.decode(b),
        reqT.fromPartial(req),
        { deadline: Date.now() + timeoutMs },
        (err, res) => (err ? reject(new Error(`${method}: ${err.details || err.message}`)) : resolve(res as Res)),
      );
    });
  }

  version = () => this.call('Version', { version: 'v1' }, cri.VersionRequest, cri.VersionResponse);
  runPodSandbox = (config: object, runtimeHandler: string) =>
    this.call('RunPodSandbox', { config, runtimeHandler }, cri.RunPodSandboxRequest, cri.RunPodSandboxResponse, 120_000);
  podSandboxStatus = (podSandboxId: string) =>
    this.call('PodSandboxStatus', { podSandboxId, verbose: true }, cri.PodSandboxStatusRequest, cri.PodSandboxStatusResponse);
  stopPodSandbox = (podSandboxId: string) => this.call('StopPodSandbox', { podSandboxId }, cri.StopPodSandboxRequest, cri.StopPodSandboxResponse, 120_000);
  removePodSandbox = (podSandboxId: string) => this.call('RemovePodSandbox', { podSandboxId }, cri.RemovePodSandboxRequest, cri.RemovePodSandboxResponse, 120_000);
  createContainer = (podSandboxId: string, config: object, sandboxConfig: object) =>
    this.call('CreateContainer', { podSandboxId, config, sandboxConfig }, cri.CreateContainerRequest, cri.CreateContainerResponse, 120_000);
  startContainer = (containerId: string) => this.call('StartContainer', { containerId }, cri.StartContainerRequest, cri.StartContainerResponse, 120_000);
  stopContainer = (containerId: string, timeout = 0) =>
    this.call('StopContainer', { containerId, timeout: BigInt(timeout) }, cri.StopContainerRequest, cri.StopContainerResponse, 120_000);
  removeContainer = (containerId: string) => this.call('RemoveContainer', { containerId }, cri.RemoveContainerRequest, cri.RemoveContainerResponse, 120_000);
  containerStatus = (containerId: string) =>
    this.call('ContainerStatus', { containerId, verbose: true }, cri.ContainerStatusRequest, cri.ContainerStatusResponse);

  checkpointContainer = (containerId: string, location: string) =>
    this.call('CheckpointContainer', { containerId, location, timeout: 120n }, cri.CheckpointContainerRequest, cri.CheckpointContainerResponse, 150_000);

  close(): void {
    this.client.close();
  }
}

export { cri };
