// The daemon's logger: pino, JSON lines into the bundle's `log` fifo, which containerd copies
// into its own log. Writes never block: with no reader (containerd restarting) or a full fifo
// the line is dropped.
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';

class FifoSink {
  private fd: number | undefined;
  constructor(private readonly file: string) {}

  write(line: string): void {
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

export function createDaemonLogger(bundle: string, fields: { namespace: string; id: string }, debug: boolean): Logger {
  return pino({ level: debug ? 'debug' : 'info', base: { ...fields, pid: process.pid } }, new FifoSink(path.join(bundle, 'log')));
}
