// Typed binding over native/crun_shim.c (libcrun 1.8, every call in a forked child). Loaded on first use.
import { FFIType, ptr, type Pointer } from "bun:ffi";
import helperPath from "../../native/build/nexcage-crun-helper" with { type: "file" };
import shimPath from "../../native/build/libnexcage_crun.so" with { type: "file" };
import { readFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { loadEmbedded } from "./loader.ts";

const F = { NO_PIVOT: 1, NO_NEW_KEYRING: 2, SYSTEMD_CGROUP: 4, DETACH: 8, ALL: 16, FORCE: 32 } as const;
const OP = { START: 1, KILL: 2, DELETE: 3, PAUSE: 4, RESUME: 5 } as const; // enum op in crun_shim.c

const P = FFIType.ptr, i32 = FFIType.i32, cstring = FFIType.cstring;
let lib: ReturnType<typeof open> | undefined;
function open() {
  const l = loadEmbedded(shimPath, {
    nx_crun_create: { args: [P, P, P, P, P, i32, i32, P, P, i32], returns: i32 },
    nx_crun_simple: { args: [i32, P, P, i32, i32, P, P, i32], returns: i32 },
    nx_crun_exec: { args: [P, P, P, P, P, i32, i32, P, P, i32], returns: i32 },
    nx_crun_update: { args: [P, P, P, i32, P, P, i32], returns: i32 },
    nx_crun_version: { args: [], returns: cstring },
    nx_crun_set_helper: { args: [P, FFIType.i64], returns: i32 },
  });
  // create/exec run libcrun from a sealed memfd copy of the helper, never from the nexcage binary
  const helper = new Uint8Array(readFileSync(helperPath));
  const rc = l.symbols.nx_crun_set_helper(ptr(helper), helper.length);
  if (rc < 0) throw new NexcageError("unsupported", `crun backend: cannot seal the libcrun helper into a memfd (errno ${-rc})`);
  return l;
}
function sym() {
  return (lib ??= open()).symbols;
}

export interface CrunGlobal {
  stateRoot: string;
  systemdCgroup: boolean;
}
export interface CrunCreateArgs extends CrunGlobal {
  id: string;
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
  preserveFds: number;
  noPivot: boolean;
  noNewKeyring: boolean;
}

/** NUL-terminated C string; the Buffer must stay referenced until the call returns (it does: sync call). */
function cs(s: string | undefined): Buffer | null {
  return s === undefined ? null : Buffer.from(`${s}\0`);
}
const p = (b: Buffer | null) => (b ? ptr(b) : null);

/** Call a shim function with (status, errbuf, errlen) appended; throw the libcrun message on failure. */
function call(what: string, fn: (status: Pointer, errbuf: Pointer, errlen: number) => number): number {
  const status = new Int32Array(1);
  const errbuf = Buffer.alloc(4096);
  const rc = fn(ptr(status), ptr(errbuf), errbuf.length);
  if (rc >= 0) return rc;
  const msg = errbuf.toString("utf8", 0, errbuf.indexOf(0)) || `${what} failed`;
  throw classify(msg, status[0] ?? 0);
}

/** Map libcrun's message to an error class, keeping the words podman and containerd match on. */
function classify(msg: string, errno: number): NexcageError {
  const ENOENT = 2, EACCES = 13;
  // libcrun's way of saying the id is unknown: it cannot open <root>/<id>/status
  if (errno === ENOENT && /\/status`/.test(msg)) return new NexcageError("notFound", `container does not exist (${msg})`);
  if (/executable file .*not found/.test(msg)) return new NexcageError("notExecutable", `executable file not found: ${msg}`);
  if (errno === EACCES || /permission denied/i.test(msg)) return new NexcageError("permission", msg.includes("permission denied") ? msg : `permission denied: ${msg}`);
  if (/hook/i.test(msg)) return new NexcageError("hookFailed", msg);
  if (/not running|already running|not paused|is running|is paused/i.test(msg)) return new NexcageError("badState", msg);
  return new NexcageError("failure", msg);
}

function flags(g: CrunGlobal, extra = 0): number {
  return (g.systemdCgroup ? F.SYSTEMD_CGROUP : 0) | extra;
}

export function crunCreate(a: CrunCreateArgs): void {
  const root = cs(a.stateRoot), id = cs(a.id), bundle = cs(a.bundle), cons = cs(a.consoleSocket), pid = cs(a.pidFile);
  const f = flags(a, (a.noPivot ? F.NO_PIVOT : 0) | (a.noNewKeyring ? F.NO_NEW_KEYRING : 0));
  call("create", (st, eb, el) => sym().nx_crun_create(p(root), p(id), p(bundle), p(cons), p(pid), a.preserveFds, f, st, eb, el));
}

function simple(op: number, g: CrunGlobal, idStr: string, signal: number, extra: number): void {
  const root = cs(g.stateRoot), id = cs(idStr);
  call("libcrun", (st, eb, el) => sym().nx_crun_simple(op, p(root), p(id), signal, flags(g, extra), st, eb, el));
}

export const crunStart = (g: CrunGlobal, id: string) => simple(OP.START, g, id, 0, 0);
export const crunKill = (g: CrunGlobal, id: string, signal: number, all: boolean) => simple(OP.KILL, g, id, signal, all ? F.ALL : 0);
export const crunDelete = (g: CrunGlobal, id: string, force: boolean) => simple(OP.DELETE, g, id, 0, force ? F.FORCE : 0);
export const crunPause = (g: CrunGlobal, id: string) => simple(OP.PAUSE, g, id, 0, 0);
export const crunResume = (g: CrunGlobal, id: string) => simple(OP.RESUME, g, id, 0, 0);

/** Returns the process's exit status, or 0 when detached. */
export function crunExec(g: CrunGlobal, idStr: string, o: { processFile: string; detach: boolean; consoleSocket?: string; pidFile?: string; preserveFds: number }): number {
  const root = cs(g.stateRoot), id = cs(idStr), proc = cs(o.processFile), cons = cs(o.consoleSocket), pid = cs(o.pidFile);
  const f = flags(g, o.detach ? F.DETACH : 0);
  return call("exec", (st, eb, el) => sym().nx_crun_exec(p(root), p(id), p(proc), p(cons), p(pid), o.preserveFds, f, st, eb, el));
}

export function crunUpdate(g: CrunGlobal, idStr: string, resourcesJson: string): void {
  const root = cs(g.stateRoot), id = cs(idStr), content = cs(resourcesJson);
  call("update", (st, eb, el) => sym().nx_crun_update(p(root), p(id), p(content), flags(g), st, eb, el));
}

export function crunVersion(): string {
  return String(sym().nx_crun_version());
}
