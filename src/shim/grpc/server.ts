// The task service over gRPC, for a containerd that was told "protocol":"grpc" at `start`
// (src/shim/grpc-bootstrap.ts). The same handlers as on ttrpc serve it, on the same socket: the
// ttrpc server hands over every connection that opens with the HTTP/2 client preface, and
// @grpc/grpc-js serves it through a connection injector. This module (and grpc-js with it) is
// loaded only by a daemon that answers gRPC.
import type { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { messageOf } from '../../errors.js';
import { logCallError, type CallContext, type Handler } from '../ttrpc/server.js';

/** The metadata key containerd's gRPC clients carry the namespace in (namespaces.WithNamespace). */
export const GRPC_NAMESPACE_KEY = 'containerd-namespace';

export class GrpcServer {
  private readonly server = new grpc.Server();
  private injector: grpc.ConnectionInjector | undefined;
  private inflight = 0;

  constructor(private readonly log: Logger) {}

  /** Told of every call as it starts (the event-loop watchdog's "what was the loop doing"). */
  onCall: ((ctx: CallContext) => void) | undefined;

  get activeCalls(): number {
    return this.inflight;
  }

  /** Serves `methods` as unary calls of `service` (payloads stay protobuf bytes, as on ttrpc). */
  register(service: string, methods: Record<string, Handler>): void {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(methods)) {
      definition[name] = {
        path: `/${service}/${name}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      };
      impl[name] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        this.call(service, name, handler, call, callback);
      };
    }
    this.server.addService(definition, impl);
  }

  /** Serves one accepted connection; `first` is what was already read from it. */
  inject(sock: Duplex, first: Buffer): void {
    this.injector ??= this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    sock.unshift(first);
    this.injector.injectConnection(sock);
  }

  close(): void {
    this.injector?.destroy();
    this.server.forceShutdown();
  }

  private call(service: string, method: string, handler: Handler, call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    const metadata = new Map<string, string[]>();
    for (const [key, value] of Object.entries(call.metadata.getMap())) {
      if (typeof value === 'string') metadata.set(key.toLowerCase(), [value]);
    }
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    const ctx: CallContext = {
      service,
      method,
      namespace: metadata.get(GRPC_NAMESPACE_KEY)?.[0],
      metadata,
      deadline: Number.isFinite(ms) ? ms : undefined,
    };
    this.inflight++;
    this.onCall?.(ctx);
    handler(ctx, call.request).then(
      (out) => callback(null, Buffer.from(out.buffer, out.byteOffset, out.byteLength)),
      (err: unknown) => callback({ code: logCallError(this.log, 'grpc', err, service, method) as number as grpc.status, details: messageOf(err) }),
    ).finally(() => {
      this.inflight--;
    });
  }
}
