// Date -> google.protobuf.Timestamp (int64 seconds as bigint, millisecond precision).
import type { Timestamp } from '../gen/google/protobuf/timestamp.js';

export function toTimestamp(d: Date): Timestamp {
  const ms = d.getTime();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
}
