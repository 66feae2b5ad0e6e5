// The watchdog of one running VM. Trips when
//  - qemu stops the VM instead of exiting (KVM internal error, guest panic, I/O error): seen on
//    its QMP socket as a STOP event and a query-status that is not "running";
//  - the guest shows no console output within the boot timeout (when the output passes through
//    the shim, i.e. fifo or terminal IO).
// On a trip it reports the reason once; the caller kills the monitor. It holds the VM's only QMP
// connection (a qemu chardev server serves one client), so it also carries the graceful stop
// (powerdown) and the commands of pause and resume (stop/cont). Owned by the task; stop() at exit or delete.
import net from 'node:net';

const BAD_STATES = new Set(['internal-error', 'guest-panicked', 'io-error', 'shutdown']);

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private sock: net.Socket | undefined;
  private stopped = false;
  private tripped = false;
  private negotiated = false;
  private nextId = 1;
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** ms of the boot timeout still to run while the VM is paused (the guest cannot print then). */
  private bootLeft: number | undefined;
  private bootDeadline = 0;

  constructor(
    private readonly onTrip: (reason: string) => void,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  /** Arms the boot timer: trips unless output() is called within ms. */
  armBootTimeout(ms: number): void {
    if (ms <= 0 || this.stopped) return;
    this.bootDeadline = Date.now() + ms;
    this.timer = setTimeout(() => this.trip(`no console output within ${ms} ms of start (guest hung at boot?)`), ms);
    this.timer.unref();
  }

  /** The VM is paused: the boot timeout stops counting. */
  suspend(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.bootLeft = Math.max(0, this.bootDeadline - Date.now());
  }

  /** The VM runs again: the boot timeout goes on with what was left of it. */
  unsuspend(): void {
    const left = this.bootLeft;
    this.bootLeft = undefined;
    if (left !== undefined) this.armBootTimeout(Math.max(left, 1));
  }

  /** Whether QMP is connected and negotiated (commands can be sent). */
  get connected(): boolean {
    return !this.stopped && this.negotiated && this.sock !== undefined && !this.sock.destroyed;
  }

  /** Resolves true once QMP is connected (qemu creates its socket just after start), false after ms. */
  async whenConnected(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.connected && !this.stopped && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.connected;
  }

  /**
   * Runs a QMP command and resolves with its "return" (rejects with qemu's error, when QMP is not
   * connected, or after timeoutMs).
   */
  command(execute: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const sock = this.sock;
    if (!this.connected || !sock) return Promise.reject(new Error('QMP is not connected'));
    const id = `urunc-${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${execute}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      sock.write(`${JSON.stringify({ execute, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  output(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Watches a QMP socket (host path); retries while qemu is still creating it. */
  watchQmp(socketPath: string, attempts = 50): void {
    if (this.stopped) return;
    const sock = net.connect(socketPath);
    this.sock = sock;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {
      if (this.stopped || this.negotiated) return;
      if (attempts > 1) setTimeout(() => this.watchQmp(socketPath, attempts - 1), 100).unref();
      else this.log(`qmp ${socketPath}: not reachable, watching console only`);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: { QMP?: unknown; event?: string; return?: { status?: string }; error?: { class?: string; desc?: string }; id?: unknown; data?: unknown };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        const waiting = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined;
        if (waiting) {
          this.pending.delete(msg.id as string);
          if (msg.error) waiting.reject(new Error(`QMP: ${msg.error.class ?? 'error'}: ${msg.error.desc ?? ''}`));
          else waiting.resolve(msg.return);
          continue;
        }
        if (msg.QMP) {
          sock.write('{"execute":"qmp_capabilities"}\n');
          this.negotiated = true;
        } else if (msg.event === 'STOP' || msg.event === 'GUEST_PANICKED' || msg.event === 'BLOCK_IO_ERROR') {
          sock.write('{"execute":"query-status"}\n');
        } else if (msg.return && typeof msg.return.status === 'string' && BAD_STATES.has(msg.return.status)) {
          this.trip(`hypervisor stopped the VM (status ${msg.return.status})`);
        }
      }
    });
    sock.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('QMP connection closed'));
      this.pending.clear();
    });
    sock.unref();
  }

  /** Presses the VM's ACPI power button (QMP system_powerdown); false when QMP is not connected. */
  powerdown(): boolean {
    if (this.stopped || !this.negotiated || !this.sock || this.sock.destroyed) return false;
    this.sock.write('{"execute":"system_powerdown"}\n');
    return true;
  }

  private trip(reason: string): void {
    if (this.tripped || this.stopped) return;
    this.tripped = true;
    this.onTrip(reason);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.sock?.destroy();
    for (const p of this.pending.values()) p.reject(new Error('QMP connection closed'));
    this.pending.clear();
  }
}
