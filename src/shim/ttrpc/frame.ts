// ttrpc framing: a 10-byte big-endian header (length u32, stream id u32, type u8, flags u8) then
// the payload. Owns no socket; the server and client feed it bytes and get whole frames back.
export const HEADER_LENGTH = 10;
export const MESSAGE_LENGTH_MAX = 4 << 20;

export const MessageType = { Request: 1, Response: 2, Data: 3 } as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
}

/** Emitted instead of a frame whose declared length exceeds the limit (its bytes are skipped). */
export interface OversizeFrame {
  streamId: number;
  type: number;
  length: number;
  oversize: true;
}

export function encodeFrame(streamId: number, type: number, flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(streamId >>> 0, 4);
  out.writeUInt8(type, 8);
  out.writeUInt8(flags, 9);
  out.set(payload, HEADER_LENGTH);
  return out;
}

/** Incremental parser. push() bytes as they arrive; it returns the frames completed by them. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private skip = 0;

  push(data: Buffer): Array<Frame | OversizeFrame> {
    const out: Array<Frame | OversizeFrame> = [];
    if (this.skip > 0) {
      const n = Math.min(this.skip, data.length);
      this.skip -= n;
      data = data.subarray(n);
    }
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    for (;;) {
      if (this.skip > 0 || this.buffered < HEADER_LENGTH) break;
      const head = this.peek(HEADER_LENGTH);
      const length = head.readUInt32BE(0);
      const streamId = head.readUInt32BE(4);
      const type = head.readUInt8(8);
      const flags = head.readUInt8(9);
      if (length > MESSAGE_LENGTH_MAX) {
        this.consume(HEADER_LENGTH);
        const have = Math.min(this.buffered, length);
        this.consume(have);
        this.skip = length - have;
        out.push({ streamId, type, length, oversize: true });
        continue;
      }
      if (this.buffered < HEADER_LENGTH + length) break;
      this.consume(HEADER_LENGTH);
      out.push({ streamId, type, flags, payload: this.take(length) });
    }
    return out;
  }

  /** Bytes of an incomplete frame still held (a truncated frame at connection close). */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if ((this.chunks[0]?.length ?? 0) < n) this.chunks = [Buffer.concat(this.chunks)];
    return (this.chunks[0] as Buffer).subarray(0, n);
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const whole = this.peek(n);
    const copy = Buffer.from(whole);
    this.consume(n);
    return copy;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const first = this.chunks[0] as Buffer;
      if (first.length <= n) {
        n -= first.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}
