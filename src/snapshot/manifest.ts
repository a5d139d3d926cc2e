// Snapshot manifests: per file path, type, mode, uid/gid, size, SHA-256 (regular files), link target
// (symlinks), device numbers; hashing is streamed and parallel (native/hash_shim.c), in batches so a
// terminal can show progress. `verify` re-hashes and names every difference.
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { writeSync } from "node:fs";

export type EntryType = "f" | "d" | "l" | "c" | "b" | "p" | "s";

export interface Entry {
  path: string;
  type: EntryType;
  /** permission and special bits (0o7777) */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** regular files */
  sha256?: string;
  /** symlinks */
  target?: string;
  /** device nodes: major:minor */
  rdev?: string;
  /** nanoseconds, as a string: lets the next snapshot reuse unchanged files' hashes */
  mtime: string;
}

export interface Manifest {
  version: 1;
  entries: Entry[];
  files: number;
  bytes: number;
}

function typeOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean }): EntryType {
  if (st.isFile()) return "f";
  if (st.isDirectory()) return "d";
  if (st.isSymbolicLink()) return "l";
  if (st.isCharacterDevice()) return "c";
  if (st.isBlockDevice()) return "b";
  if (st.isFIFO()) return "p";
  return "s";
}

/** every entry under root, sorted by path ("" is root itself), without hashes */
export function scan(root: string): Entry[] {
  const out: Entry[] = [];
  const walk = (rel: string) => {
    const abs = rel ? `${root}/${rel}` : root;
    const st = lstatSync(abs, { bigint: true });
    const type = typeOf(st);
    const e: Entry = { path: rel, type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: type === "f" ? Number(st.size) : 0, mtime: String(st.mtimeNs) };
    if (type === "l") e.target = readlinkSync(abs);
    if (type === "c" || type === "b") e.rdev = `${Number((st.rdev >> 8n) & 0xfffn)}:${Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn))}`;
    out.push(e);
    if (type === "d") for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk("");
  return out;
}

export interface HashOptions {
  /** entries of an earlier manifest: a file with the same size, mtime and mode keeps its hash ... */
  reuse?: Map<string, Entry>;
  /** ... if that mtime is older than this (ns): a file written in the same timestamp tick as the earlier
   *  snapshot could have changed without its mtime moving (coarse clocks: zfs-fuse keeps seconds), so
   *  those are hashed again, as git treats "racily clean" files */
  reuseBefore?: bigint;
  /** show a progress line on stderr (only when it is a terminal) */
  progress?: boolean;
}

const BATCH_FILES = 512;
const BATCH_BYTES = 256 * 2 ** 20;

/** fill in sha256 for regular files (in place) */
export async function hashEntries(root: string, entries: Entry[], opts: HashOptions = {}): Promise<void> {
  const { sha256Files } = await import("../native/hash.ts");
  const todo: Entry[] = [];
  for (const e of entries) {
    if (e.type !== "f") continue;
    const old = opts.reuse?.get(e.path);
    const settled = opts.reuseBefore === undefined || BigInt(e.mtime) < opts.reuseBefore;
    if (settled && old?.type === "f" && old.sha256 && old.size === e.size && old.mtime === e.mtime && old.mode === e.mode) e.sha256 = old.sha256;
    else todo.push(e);
  }
  const total = todo.reduce((n, e) => n + e.size, 0);
  const show = opts.progress !== false && process.stderr.isTTY && total > 64 * 2 ** 20;
  let done = 0;
  for (let i = 0; i < todo.length; ) {
    const batch: Entry[] = [];
    let bytes = 0;
    while (i < todo.length && batch.length < BATCH_FILES && bytes < BATCH_BYTES) {
      const e = todo[i++] as Entry;
      batch.push(e);
      bytes += e.size;
    }
    const hashes = sha256Files(batch.map((e) => `${root}/${e.path}`));
    batch.forEach((e, j) => {
      const h = hashes[j] as { sha256: string; size: number };
      if (h.size < 0) throw new Error(`cannot read ${e.path}: errno ${-h.size}`);
      e.sha256 = h.sha256;
    });
    done += bytes;
    if (show) writeSync(2, `\rhashing: ${Math.floor((done / total) * 100)}% of ${(total / 2 ** 20).toFixed(0)} MiB`);
  }
  if (show) writeSync(2, "\r\x1b[K");
}

export async function buildManifest(root: string, opts: HashOptions = {}): Promise<Manifest> {
  const entries = scan(root);
  await hashEntries(root, entries, opts);
  return summarize(entries);
}

export function summarize(entries: Entry[]): Manifest {
  const files = entries.filter((e) => e.type === "f");
  return { version: 1, entries, files: files.length, bytes: files.reduce((n, e) => n + e.size, 0) };
}

export interface Difference {
  path: string;
  what: string;
}

/** every way `actual` differs from the manifest, one line per path and property */
export function compare(expected: Manifest, actual: Entry[]): Difference[] {
  const diffs: Difference[] = [];
  const have = new Map(actual.map((e) => [e.path, e]));
  const show = (p: string) => (p === "" ? "/" : `/${p}`);
  for (const e of expected.entries) {
    const a = have.get(e.path);
    have.delete(e.path);
    if (!a) {
      diffs.push({ path: show(e.path), what: "missing" });
      continue;
    }
    if (a.type !== e.type) {
      diffs.push({ path: show(e.path), what: `type ${e.type} → ${a.type}` });
      continue;
    }
    if (a.mode !== e.mode) diffs.push({ path: show(e.path), what: `mode ${e.mode.toString(8).padStart(4, "0")} → ${a.mode.toString(8).padStart(4, "0")}` });
    if (a.uid !== e.uid || a.gid !== e.gid) diffs.push({ path: show(e.path), what: `owner ${e.uid}:${e.gid} → ${a.uid}:${a.gid}` });
    if (e.type === "f" && a.size !== e.size) diffs.push({ path: show(e.path), what: `size ${e.size} → ${a.size}` });
    else if (e.type === "f" && a.sha256 !== e.sha256) diffs.push({ path: show(e.path), what: "content differs (sha256)" });
    if (e.type === "l" && a.target !== e.target) diffs.push({ path: show(e.path), what: `link target ${e.target} → ${a.target}` });
    if (a.rdev !== e.rdev) diffs.push({ path: show(e.path), what: `device ${e.rdev} → ${a.rdev}` });
  }
  for (const p of have.keys()) diffs.push({ path: show(p), what: "not in the snapshot" });
  return diffs;
}

/** re-hash a tree fully (no reuse) and compare it with the manifest */
export async function verifyTree(root: string, expected: Manifest, progress = true): Promise<Difference[]> {
  const actual = scan(root);
  await hashEntries(root, actual, { progress });
  return compare(expected, actual);
}
