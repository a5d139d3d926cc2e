// The few libc calls Bun does not expose. Loaded lazily (~0.2 ms), only by commands that mutate state.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

let lib: ReturnType<typeof open> | undefined;
function open() {
  return dlopen("libc.so.6", {
    fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    mkfifo: { args: [FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    dup: { args: [FFIType.i32], returns: FFIType.i32 },
    dup2: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  });
}
function libc() {
  return (lib ??= open()).symbols;
}

const F_SETLK = 6;
const F_WRLCK = 1;
const F_UNLCK = 2;
const EINTR = 4;
const EAGAIN = 11;
const EACCES = 13;

/**
 * POSIX record lock on the whole file (fcntl F_SETLK). Chosen over flock because record locks are owned
 * by the process and are NOT inherited across fork: the libcrun child and the container init it leaves
 * behind can never keep a container's lock held. Returns false when another process holds it.
 */
export function tryLockFile(fd: number, lock = true): boolean {
  // struct flock on x86_64/aarch64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
  const fl = new ArrayBuffer(32);
  const view = new DataView(fl);
  view.setInt16(0, lock ? F_WRLCK : F_UNLCK, true);
  view.setInt16(2, 0, true); // SEEK_SET, start 0, len 0 = whole file
  for (;;) {
    if (libc().fcntl(fd, F_SETLK, ptr(fl)) === 0) return true;
    const errno = readErrno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN || errno === EACCES) return false;
    throw new Error(`fcntl(F_SETLK): errno ${errno}`);
  }
}

/** mkfifo(3) (node has none); throws with the errno */
export function mkfifo(path: string, mode: number): void {
  const p = Buffer.from(`${path}\0`);
  if (libc().mkfifo(ptr(p), mode) !== 0) throw new Error(`mkfifo ${path}: errno ${readErrno()}`);
}

/**
 * Run fn with /dev/null as fds 0-2, then put ours back: a container created inside (a restart nexcage does
 * on its own) must not inherit the caller's stdio, which may be a pipe someone waits on to close.
 */
export async function withNullStdio<T>(fn: () => Promise<T>): Promise<T> {
  const { openSync, closeSync } = await import("node:fs");
  const saved = [0, 1, 2].map((fd) => libc().dup(fd));
  const nul = openSync("/dev/null", "r+");
  for (const fd of [0, 1, 2]) libc().dup2(nul, fd);
  closeSync(nul);
  try {
    return await fn();
  } finally {
    saved.forEach((s, fd) => {
      if (s >= 0) {
        libc().dup2(s, fd);
        closeSync(s);
      }
    });
  }
}

function readErrno(): number {
  const p = libc().__errno_location();
  return p ? read.i32(p, 0) : 0;
}

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
let procLib: ReturnType<typeof openProc> | undefined;
function openProc() {
  return dlopen("libc.so.6", {
    prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    waitpid: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  });
}

/** Orphaned descendants (a container's init once the backend's helper exits) get reparented to us. */
export function becomeSubreaper(): void {
  (procLib ??= openProc()).symbols.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

/**
 * Non-blocking wait for one known pid (never -1: that would steal Bun's own children).
 * Returns undefined while it runs, else its exit code (128+signal when killed, as shells report it).
 */
export function pollExit(pid: number): number | undefined {
  const status = new Int32Array(1);
  const r = (procLib ??= openProc()).symbols.waitpid(pid, ptr(status), WNOHANG);
  if (r === 0) return undefined;
  if (r < 0) throw new Error(`waitpid(${pid}): errno ${readErrno()}`);
  const s = status[0] ?? 0;
  const sig = s & 0x7f;
  return sig === 0 ? (s >> 8) & 0xff : 128 + sig;
}
