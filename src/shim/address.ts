// Shim socket addresses: derived exactly as containerd's shim library derives them, so a group's
// address is stable across `start` invocations and a live daemon can be found and reused.
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';

export const DEFAULT_SOCKET_DIR = '/run/containerd/s';
/** The group of grouping "node": one daemon per containerd namespace, the one native/front.c finds. */
export const NODE_GROUP = 'urunc-node';

export function socketAddress(grpcAddress: string, namespace: string, groupId: string, socketDir = DEFAULT_SOCKET_DIR): string {
  const digest = createHash('sha256').update(path.join(grpcAddress, namespace, groupId)).digest('hex');
  return `unix://${path.join(socketDir, digest)}`;
}

export function socketPath(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address;
}

/**
 * The shim socket named by a bundle's `address` file: a plain `unix://` address (ttrpc), or the
 * JSON answer of a gRPC `start` ({"address": "/run/containerd/s/..."}); undefined for anything else.
 */
export function addressFileSocket(text: string): string | undefined {
  const t = text.trim();
  if (t.startsWith('unix://')) return t;
  try {
    const a = (JSON.parse(t) as { address?: unknown }).address;
    return typeof a === 'string' && a.startsWith('/') ? `unix://${a}` : undefined;
  } catch {
    return undefined;
  }
}

/** True when something accepts connections on the socket. */
export function canConnect(address: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.createConnection({ path: socketPath(address) });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}
