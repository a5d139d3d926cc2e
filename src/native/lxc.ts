// Typed binding over native/lxc_shim.c (system liblxc). Loaded on first use; the monitor helper is kept in
// a sealed memfd and fork+fexecve'd from there, the container init is a file the backend places itself.
import { FFIType, ptr } from "bun:ffi";
import initPath from "../../native/build/nexcage-lxc-init" with { type: "file" };
import monitorPath from "../../native/build/nexcage-lxc-monitor" with { type: "file" };
import shimPath from "../../native/build/libnexcage_lxc.so" with { type: "file" };
import { readFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { loadEmbedded } from "./loader.ts";

const P = FFIType.ptr, i32 = FFIType.i32, i64 = FFIType.i64;
let lib: ReturnType<typeof open> | undefined;
let monitorFd = -1;

function open() {
  try {
    return loadEmbedded(shimPath, {
      nx_lxc_version: { args: [], returns: FFIType.cstring },
      nx_lxc_state: { args: [P, P, P, i32], returns: i32 },
      nx_lxc_freeze: { args: [P, P, i32, P, i32], returns: i32 },
      nx_lxc_list: { args: [P, P, i32], returns: i32 },
      nx_lxc_attach: { args: [P, P, P, i64, i32, i32, P, i32, P, P, i32], returns: i32 },
      nx_spawn_fd: { args: [i32, P, i64], returns: i32 },
      nx_seal: { args: [P, P, i64], returns: i32 },
    });
  } catch (e) {
    throw new NexcageError("unsupported", `lxc backend: cannot load liblxc (apt-get install lxc): ${(e as Error).message.split("\n")[0]}`);
  }
}
function sym() {
  return (lib ??= open()).symbols;
}

const cs = (s: string) => Buffer.from(`${s}\0`);
/** NUL-separated fields, as the shim and the init read them */
export const blob = (fields: string[]) => Buffer.from(fields.map((f) => `${f}\0`).join(""));

function check(rc: number, err: Buffer): number {
  if (rc >= 0) return rc;
  throw new NexcageError("failure", err.toString("utf8", 0, err.indexOf(0)) || `liblxc error ${-rc}`);
}

export function lxcVersion(): string {
  return String(sym().nx_lxc_version());
}

/** state name (RUNNING, STOPPED, FROZEN ...) and init pid (0 when not running) */
export function lxcState(name: string, lxcpath: string): { state: string; pid: number } {
  const out = Buffer.alloc(64);
  const n = cs(name), p = cs(lxcpath);
  const pid = sym().nx_lxc_state(ptr(n), ptr(p), ptr(out), out.length);
  return { state: out.toString("utf8", 0, out.indexOf(0)), pid: Math.max(pid, 0) };
}

export function lxcFreeze(name: string, lxcpath: string, thaw: boolean): void {
  const err = Buffer.alloc(512);
  const n = cs(name), p = cs(lxcpath);
  check(sym().nx_lxc_freeze(ptr(n), ptr(p), thaw ? 1 : 0, ptr(err), err.length), err);
}

export function lxcList(lxcpath: string): string[] {
  const out = Buffer.alloc(1 << 20);
  const p = cs(lxcpath);
  const n = sym().nx_lxc_list(ptr(p), ptr(out), out.length);
  if (n <= 0) return [];
  return out.toString("utf8", 0, out.lastIndexOf(0)).split("\0").slice(0, n);
}

export interface AttachArgs {
  cwd: string;
  umask?: number;
  args: string[];
  env: string[];
  uid: number;
  gid: number;
  groups: number[];
  consoleSocket?: string;
}

/** start a process in the container; returns its pid (a child of this process) */
export function lxcAttach(name: string, lxcpath: string, a: AttachArgs): number {
  const err = Buffer.alloc(1024);
  const b = blob([a.cwd, a.umask === undefined ? "-" : a.umask.toString(8), String(a.args.length), ...a.args, ...a.env]);
  const gids = new Int32Array(Math.max(a.groups.length, 1));
  gids.set(a.groups);
  const n = cs(name), p = cs(lxcpath), sock = a.consoleSocket ? cs(a.consoleSocket) : null;
  const rc = sym().nx_lxc_attach(ptr(n), ptr(p), ptr(b), b.length, a.uid, a.gid, ptr(gids), a.groups.length, sock ? ptr(sock) : null, ptr(err), err.length);
  return check(rc, err);
}

/** fork + exec the monitor helper (inherits our stdio); returns its pid */
export function spawnMonitor(name: string, lxcpath: string, consoleSocket: string | undefined, joinNamespaces: string[]): number {
  if (monitorFd < 0) {
    const bytes = new Uint8Array(readFileSync(monitorPath));
    const label = cs("nexcage-lxc-monitor");
    monitorFd = sym().nx_seal(ptr(label), ptr(bytes), bytes.length);
    if (monitorFd < 0) throw new NexcageError("failure", `lxc backend: cannot seal the monitor helper (errno ${-monitorFd})`);
  }
  const args = blob(["nexcage-lxc-monitor", name, lxcpath, consoleSocket ?? "", ...joinNamespaces]);
  const pid = sym().nx_spawn_fd(monitorFd, ptr(args), args.length);
  if (pid < 0) throw new NexcageError("failure", `lxc backend: cannot start the monitor helper (errno ${-pid})`);
  return pid;
}

/** the static container init's bytes (placed into each container's run dir) */
export function initBinary(): Uint8Array {
  return new Uint8Array(readFileSync(initPath));
}
