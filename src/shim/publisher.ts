// Forwards task events to containerd over ttrpc (Events.Forward), strictly in order, with bare
// type URLs (1.6's typeurl rejects a type.googleapis.com/ prefix). A failed call is retried up to
// five times with a fresh connection; then the event is logged and dropped.
import type { Logger } from 'pino';
import { ForwardRequest } from '../gen/containerd/services/events/ttrpc.js';
import * as ev from '../gen/containerd/events/task.js';
import type { EventSink, TaskEvent } from '../task/types.js';
import { TtrpcClient } from './ttrpc/client.js';
import { NAMESPACE_KEY } from './ttrpc/server.js';
import { toTimestamp } from './timestamp.js';

const SERVICE = 'containerd.services.events.ttrpc.v1.Events';

export function encodeEvent(e: TaskEvent): { typeUrl: string; value: Uint8Array } {
  switch (e.topic) {
    case '/tasks/create':
      return { typeUrl: 'containerd.events.TaskCreate', value: ev.TaskCreate.encode({ containerId: e.containerId, bundle: e.bundle, rootfs: e.rootfs, io: e.io, checkpoint: e.checkpoint, pid: e.pid }).finish() };
    case '/tasks/start':
      return { typeUrl: 'containerd.events.TaskStart', value: ev.TaskStart.encode({ containerId: e.containerId, pid: e.pid }).finish() };
    case '/tasks/exit':
      return { typeUrl: 'containerd.events.TaskExit', value: ev.TaskExit.encode({ containerId: e.containerId, id: e.id, pid: e.pid, exitStatus: e.exitStatus, exitedAt: toTimestamp(e.exitedAt) }).finish() };
    case '/tasks/delete':
      return { typeUrl: 'containerd.events.TaskDelete', value: ev.TaskDelete.encode({ containerId: e.containerId, id: e.id, pid: e.pid, exitStatus: e.exitStatus, exitedAt: toTimestamp(e.exitedAt) }).finish() };
    case '/tasks/exec-added':
      return { typeUrl: 'containerd.events.TaskExecAdded', value: ev.TaskExecAdded.encode({ containerId: e.containerId, execId: e.execId }).finish() };
    case '/tasks/exec-started':
      return { typeUrl: 'containerd.events.TaskExecStarted', value: ev.TaskExecStarted.encode({ containerId: e.containerId, execId: e.execId, pid: e.pid }).finish() };
    case '/tasks/paused':
      return { typeUrl: 'containerd.events.TaskPaused', value: ev.TaskPaused.encode({ containerId: e.containerId }).finish() };
    case '/tasks/resumed':
      return { typeUrl: 'containerd.events.TaskResumed', value: ev.TaskResumed.encode({ containerId: e.containerId }).finish() };
    case '/tasks/oom':
      return { typeUrl: 'containerd.events.TaskOOM', value: ev.TaskOOM.encode({ containerId: e.containerId }).finish() };
  }
}

export class Publisher implements EventSink {
  private readonly queue: Array<{ namespace: string; event: TaskEvent; at: Date }> = [];
  private client: TtrpcClient | undefined;
  private running: Promise<void> | undefined;
  /** Events published so far: the daemon's lifecycle activity (src/shim/trim.ts). */
  published = 0;

  constructor(
    private readonly ttrpcAddress: string,
    private readonly log: Logger,
  ) {}

  publish(namespace: string, event: TaskEvent): void {
    this.published++;
    this.queue.push({ namespace, event, at: new Date() });
    this.running ??= this.pump().finally(() => (this.running = undefined));
  }

  /** Resolves when the queue is empty or after timeoutMs. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.running || this.queue.length) && Date.now() < deadline) {
      await Promise.race([this.running, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const item = this.queue[0] as (typeof this.queue)[number];
      const req = ForwardRequest.encode({
        envelope: { timestamp: toTimestamp(item.at), namespace: item.namespace, topic: item.event.topic, event: encodeEvent(item.event) },
      }).finish();
      let sent = false;
      for (let attempt = 0; attempt < 5 && !sent; attempt++) {
        try {
          if (!this.client || this.client.closed) this.client = await TtrpcClient.connect(this.ttrpcAddress, 5000);
          await this.client.call(SERVICE, 'Forward', req, { timeoutMs: 5000, metadata: { [NAMESPACE_KEY]: item.namespace } });
          sent = true;
        } catch (err: unknown) {
          this.client?.close();
          this.client = undefined;
          this.log.warn({ err, topic: item.event.topic, attempt }, 'forward event failed');
          await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        }
      }
      if (!sent) this.log.error({ topic: item.event.topic }, 'event dropped after retries');
      this.queue.shift();
    }
  }
}
