// The error vocabulary. Domain code throws ShimError with a code; only the transport
// (src/shim/ttrpc) turns codes into wire statuses. Codes are the gRPC numbers containerd maps
// through errdefs (1.6/1.7) and errgrpc (2.x).
export const Code = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

export class ShimError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ShimError';
  }
}

export const notFound = (what: string): ShimError => new ShimError(Code.NotFound, `${what}: not found`);
export const alreadyExists = (what: string): ShimError => new ShimError(Code.AlreadyExists, `${what}: already exists`);
export const failedPrecondition = (msg: string): ShimError => new ShimError(Code.FailedPrecondition, msg);
export const invalidArgument = (msg: string): ShimError => new ShimError(Code.InvalidArgument, msg);
export const unimplemented = (what: string): ShimError => new ShimError(Code.Unimplemented, `${what}: not implemented`);

/** The code an arbitrary thrown value maps to; anything that is not a ShimError is Unknown. */
export function codeOf(err: unknown): Code {
  return err instanceof ShimError ? err.code : Code.Unknown;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
