// One error type for the whole runtime: a machine-readable code, a lowercase one-line message, and
// the process exit code that the CLI uses. Messages keep the exact words clients match on
// ("container does not exist", "container not running", "permission denied", ...).

export const ExitCode = {
  failure: 1, // the backend or the OS refused (runc uses 1 for everything; clients only read the text)
  usage: 2, // bad command line
  invalidSpec: 3, // config.json / nexcage config / API body failed validation
  notFound: 4, // container does not exist
  badState: 5, // operation not allowed in the container's current state
  exists: 6, // id already in use
  busy: 7, // lock not acquired in time
  unsupported: 8, // backend or feature unavailable on this host
  hookFailed: 9, // an OCI hook failed or timed out
  storage: 10, // a storage refused (missing, full, volume errors): Proxmox, ZFS, btrfs
  timeout: 11, // a backend command did not finish in time
  integrity: 12, // a snapshot's files differ from its manifest
  permission: 126, // same numbers podman uses for these two classes
  notExecutable: 127,
} as const;

export type ErrorCode = keyof typeof ExitCode;

export class NexcageError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  /** the message already reached the caller's stderr (a subprocess that shares it printed it) */
  printed = false;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NexcageError";
    this.code = code;
    this.exitCode = ExitCode[code];
  }

  /** Prefix context the way crun does: "outer: inner". */
  wrap(context: string): NexcageError {
    return new NexcageError(this.code, `${context}: ${this.message}`, { cause: this });
  }
}

export const errors = {
  notFound: (id: string) => new NexcageError("notFound", `container does not exist: ${id}`),
  notRunning: (id: string) => new NexcageError("badState", `container not running: ${id}`),
  exists: (id: string) => new NexcageError("exists", `container with id exists: ${id}`),
  usage: (msg: string) => new NexcageError("usage", msg),
};

/** Normalise anything thrown into a NexcageError, mapping common errno codes to their class. */
export function toNexcageError(e: unknown): NexcageError {
  if (e instanceof NexcageError) return e;
  const err = e as NodeJS.ErrnoException;
  const msg = String(err?.message ?? e);
  switch (err?.code) {
    case "EACCES":
    case "EPERM":
      return new NexcageError("permission", msg.includes("permission denied") ? msg : `permission denied: ${msg}`);
    case "ENOENT":
      return new NexcageError("failure", msg.includes("no such file or directory") ? msg : `no such file or directory: ${msg}`);
    default:
      return new NexcageError("failure", msg);
  }
}
