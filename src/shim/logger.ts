// The daemon's logger: pino, JSON lines into the bundle's `log` fifo, which containerd copies
// into its own log. Writes never block: with no reader (containerd restarting) or a full fifo
// the line is dropped.
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';

class FifoSink {
  private fd: number | undefined;
  private closed = false;
  constructor(private readonly file: () => string | undefined) {}

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
      const file = this.file();
      this.fd = file === undefined ? undefined : fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      this.fd = undefined; // no reader right now (ENXIO) or no fifo
    }
  }
}

export interface BundleLogger {
  log: Logger;
  close(): void;
}

/**
 * A logger into one bundle's `log` fifo, which containerd copies for the task of that bundle. A
 * function instead of a bundle is asked again whenever the fifo it named went away (the shared
 * daemon's own lines move to a live task's bundle when the first one is removed).
 */
export function createBundleLogger(bundle: string | (() => string | undefined), fields: { namespace: string; id: string }, debug: boolean): BundleLogger {
  const where = typeof bundle === 'string' ? () => bundle : bundle;
  const sink = new FifoSink(() => {
    const b = where();
    return b === undefined ? undefined : path.join(b, 'log');
  });
  return { log: pino({ level: debug ? 'debug' : 'info', base: { ...fields, pid: process.pid } }, sink), close: () => sink.close() };
}
