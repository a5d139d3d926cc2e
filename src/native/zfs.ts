// libzfs_core over bun:ffi (with libnvpair for property lists). Loading or initialising can fail (no ZFS
// kernel module: libzfs_core_init() gives ENOENT); callers then use the zfs CLI. Loaded on first use.
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";

const P = FFIType.ptr, i32 = FFIType.i32;
let lib: { core: ReturnType<typeof openCore>; nv: ReturnType<typeof openNv> } | undefined;
let initError: string | undefined;

function openCore() {
  return dlopen("libzfs_core.so.3", {
    libzfs_core_init: { args: [], returns: i32 },
    lzc_create: { args: [P, i32, P, P, FFIType.u32], returns: i32 },
    lzc_destroy: { args: [P], returns: i32 },
    lzc_exists: { args: [P], returns: i32 },
    lzc_snapshot: { args: [P, P, P], returns: i32 },
    lzc_clone: { args: [P, P, P], returns: i32 },
    lzc_rollback_to: { args: [P, P], returns: i32 },
    lzc_destroy_snaps: { args: [P, i32, P], returns: i32 },
    lzc_send: { args: [P, P, i32, i32], returns: i32 },
    lzc_receive: { args: [P, P, P, i32, i32, i32], returns: i32 },
  });
}
function openNv() {
  return dlopen("libnvpair.so.3", {
    fnvlist_alloc: { args: [], returns: P },
    fnvlist_add_uint64: { args: [P, P, FFIType.u64], returns: FFIType.void },
    fnvlist_add_boolean: { args: [P, P], returns: FFIType.void },
    fnvlist_free: { args: [P], returns: FFIType.void },
  });
}

/** undefined when libzfs_core works here, else why not (library missing, or init's errno) */
export function zfsCoreProblem(): string | undefined {
  if (lib || initError) return initError;
  try {
    const core = openCore();
    const nv = openNv();
    const rc = core.symbols.libzfs_core_init();
    if (rc !== 0) initError = `libzfs_core_init() failed with errno ${rc}${rc === 2 ? " (ENOENT: no /dev/zfs, the ZFS kernel module is not loaded)" : ""}`;
    else lib = { core, nv };
  } catch (e) {
    initError = `libzfs_core cannot be loaded: ${(e as Error).message.split("\n")[0]} (apt-get install libzfs4linux)`;
  }
  return initError;
}

const cs = (s: string) => Buffer.from(`${s}\0`);
const LZC_DATSET_TYPE_ZFS = 2;

/** lzc_create of a filesystem with uint64 properties; 0 or errno */
export function lzcCreate(name: string, props: Record<string, bigint>): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const nvl = lib.nv.symbols.fnvlist_alloc() as Pointer;
  try {
    const keys = Object.entries(props).map(([k, v]) => [cs(k), v] as const);
    for (const [k, v] of keys) lib.nv.symbols.fnvlist_add_uint64(nvl, ptr(k), v);
    const n = cs(name);
    return lib.core.symbols.lzc_create(ptr(n), LZC_DATSET_TYPE_ZFS, nvl, null, 0);
  } finally {
    lib.nv.symbols.fnvlist_free(nvl);
  }
}

export function lzcDestroy(name: string): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const n = cs(name);
  return lib.core.symbols.lzc_destroy(ptr(n));
}

export function lzcExists(name: string): boolean {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const n = cs(name);
  return lib.core.symbols.lzc_exists(ptr(n)) !== 0;
}

/** call fn with an nvlist naming one "fs@snap" (how lzc_snapshot and lzc_destroy_snaps take snapshots) */
function withSnapList(name: string, fn: (l: NonNullable<typeof lib>, snaps: Pointer, errlist: Pointer) => number): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const l = lib;
  const snaps = l.nv.symbols.fnvlist_alloc() as Pointer;
  try {
    const n = cs(name);
    l.nv.symbols.fnvlist_add_boolean(snaps, ptr(n));
    const errlist = new BigUint64Array(1);
    return fn(l, snaps, ptr(errlist));
  } finally {
    l.nv.symbols.fnvlist_free(snaps);
  }
}

/** lzc_snapshot of one "fs@snap" (atomic); 0 or errno */
export function lzcSnapshot(name: string): number {
  return withSnapList(name, (l, snaps, errlist) => l.core.symbols.lzc_snapshot(snaps, null, errlist));
}

/** lzc_clone: a filesystem from a snapshot (mounts nothing); 0 or errno */
export function lzcClone(name: string, origin: string): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const n = cs(name), o = cs(origin);
  return lib.core.symbols.lzc_clone(ptr(n), ptr(o), null);
}

/** lzc_rollback_to: roll fs back to snap, which must be its latest (EEXIST otherwise); 0 or errno */
export function lzcRollbackTo(fs: string, snap: string): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const f = cs(fs), s = cs(snap);
  return lib.core.symbols.lzc_rollback_to(ptr(f), ptr(s));
}

/** lzc_destroy_snaps of one "fs@snap" (EEXIST if cloned, EBUSY if held); 0 or errno */
export function lzcDestroySnap(name: string): number {
  return withSnapList(name, (l, snaps, errlist) => l.core.symbols.lzc_destroy_snaps(snaps, 0, errlist));
}

/** lzc_send: the stream of snap (incremental from `from` when given) to fd; 0 or errno */
export function lzcSend(snap: string, from: string | undefined, fd: number): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const s = cs(snap), f = from ? cs(from) : null;
  return lib.core.symbols.lzc_send(ptr(s), f ? ptr(f) : null, fd, 0);
}

/** lzc_receive: a stream from fd as snapshot `snap` (its filesystem is created for a full stream); 0 or errno */
export function lzcReceive(snap: string, fd: number): number {
  if (!lib) throw new Error("libzfs_core is not initialised");
  const s = cs(snap);
  return lib.core.symbols.lzc_receive(ptr(s), null, null, 0, 0, fd);
}
