// A qemu VM's state (memory and devices) saved into a checkpoint and loaded into a new VM, through
// qemu's own migration stream over a unix socket in the monitor's scratch dir (qemu runs chrooted in
// its monitor root; the daemon reaches that dir as /proc/<pid>/root<scratch>, which keeps socket paths
// short). Saving needs the VM stopped first (Pause); loading needs qemu started with
// `-incoming unix:<scratch>/incoming.sock`, which waits for the stream before running anything.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** What a VM state operation needs of the VM's QMP connection (src/monitors/watchdog.ts). */
export interface Qmp {
  command(execute: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
}

export const STATE_FILE = 'vm.state';
export const INCOMING_SOCKET = 'incoming.sock';
const OUTGOING_SOCKET = 'outgoing.sock';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The migration's status from query-migrate until it is over; rejects on failure or after timeoutMs. */
async function migrationDone(qmp: Qmp, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = (await qmp.command('query-migrate')) as { status?: string; 'error-desc'?: string } | undefined;
    if (r?.status === 'completed') return;
    if (r?.status === 'failed' || r?.status === 'cancelled') throw new Error(`${what}: migration ${r.status}${r['error-desc'] ? `: ${r['error-desc']}` : ''}`);
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs} ms (status ${r?.status ?? 'unknown'})`);
    await sleep(10);
  }
}

/**
 * Saves the (stopped) VM of qemu `pid` into `out`: the daemon listens on a socket in the monitor's
 * scratch dir, qemu migrates into it, the stream goes to the file. The VM stays stopped afterwards
 * (qemu's postmigrate state); `cont` runs it again. Resolves with the bytes written.
 */
export async function saveVmState(qmp: Qmp, pid: number, scratch: string, out: string, timeoutMs = 120_000): Promise<number> {
  const hostSock = `/proc/${pid}/root${scratch}/${OUTGOING_SOCKET}`;
  fs.rmSync(hostSock, { force: true });
  const server = net.createServer();
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (sock) => {
      server.close();
      pipeline(sock, fs.createWriteStream(out, { mode: 0o600 })).then(resolve, reject);
    });
    server.once('error', reject);
  });
  await new Promise<void>((resolve, reject) => server.listen(hostSock, resolve).once('error', reject));
  try {
    // qemu may run as the container's user; the scratch dir is that user's and mode 0700.
    fs.chmodSync(hostSock, 0o666);
    await qmp.command('migrate', { uri: `unix:${scratch}/${OUTGOING_SOCKET}` });
    await migrationDone(qmp, 'saving the VM', timeoutMs);
    await received;
  } finally {
    server.close();
    fs.rmSync(hostSock, { force: true });
  }
  return (await fs.promises.stat(out)).size;
}

/**
 * Streams a saved state into qemu `pid`, started with `-incoming unix:<scratch>/incoming.sock`, and
 * waits until qemu has loaded it; a VM saved while stopped is then stopped (`cont` runs it).
 */
export async function loadVmState(qmp: Qmp, pid: number, scratch: string, file: string, timeoutMs = 120_000): Promise<void> {
  const hostSock = `/proc/${pid}/root${scratch}/${INCOMING_SOCKET}`;
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(hostSock)) {
    if (Date.now() > deadline) throw new Error(`restoring the VM: qemu did not open ${path.join(scratch, INCOMING_SOCKET)}`);
    await sleep(10);
  }
  const sock = net.connect(hostSock);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  await streamState(file, sock);
  // The destination's runstate leaves "inmigrate" once the whole stream is loaded.
  for (;;) {
    const st = (await qmp.command('query-status')) as { status?: string } | undefined;
    if (st?.status && st.status !== 'inmigrate') {
      if (st.status === 'paused' || st.status === 'running' || st.status === 'postmigrate') return;
      throw new Error(`restoring the VM: qemu is ${st.status} after loading the state`);
    }
    if (Date.now() > deadline + timeoutMs) throw new Error('restoring the VM: the state was not loaded in time');
    await sleep(10);
  }
}

/**
 * Writes the saved state into qemu's incoming socket. qemu closes its end as soon as it has read the
 * stream's end marker, which can come before this side's shutdown completes (a "premature close"
 * for a stream pipeline, seen twice in a dozen restores of the bench): every byte handed to the kernel is what
 * counts, and whether qemu loaded it is asked through QMP after.
 */
export async function streamState(file: string, sock: net.Socket): Promise<void> {
  // Synchronous: the file is in the checkpoint containerd extracted into its own root, on the node.
  const size = fs.statSync(file).size;
  let closed = false;
  const ended = new Promise<void>((resolve) => {
    sock.once('close', () => {
      closed = true;
      resolve();
    });
    sock.once('finish', resolve);
  });
  sock.on('error', () => undefined);
  let flushed = 0;
  try {
    for await (const chunk of fs.createReadStream(file)) {
      if (closed || !(await new Promise<boolean>((r) => sock.write(chunk as Buffer, (err) => r(!err))))) break;
      flushed += (chunk as Buffer).length;
    }
  } catch (err: unknown) {
    sock.destroy();
    throw err;
  }
  if (flushed < size) {
    sock.destroy();
    throw new Error(`qemu closed the incoming stream after ${flushed} of ${size} bytes`);
  }
  sock.end();
  await ended;
}
