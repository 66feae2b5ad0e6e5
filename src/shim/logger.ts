// The daemon's logger: pino, JSON lines into the bundle's `log` fifo, which containerd copies
// into its own log. Writes never block: with no reader (containerd restarting) or a full fifo
// the line is dropped.
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';

class FifoSink {
  private fd: number | undefined;
  private closed = false;
  constructor(private readonly file: string) {}

  close(): void {
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  write(line: string): void {
    if (this.closed) return;
    if (this.fd === undefined) this.reopen();
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, line);
    } catch (err: unknown) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE' || code === 'EBADF') {
        fs.closeSync(this.fd);
        this.fd = undefined;
      }
      // EAGAIN: reader too slow; the line is dropped
    }
  }

  private reopen(): void {
    try {
      this.fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      this.fd = undefined; // no reader right now (ENXIO) or no fifo
    }
  }
}

export interface BundleLogger {
  log: Logger;
  close(): void;
}

/** A logger into one bundle's `log` fifo, which containerd copies for the task of that bundle. */
export function createBundleLogger(bundle: string, fields: { namespace: string; id: string }, debug: boolean): BundleLogger {
  const sink = new FifoSink(path.join(bundle, 'log'));
  return { log: pino({ level: debug ? 'debug' : 'info', base: { ...fields, pid: process.pid } }, sink), close: () => sink.close() };
}
