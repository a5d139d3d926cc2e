// Files of a sandbox, confined to its root filesystem. A path is first resolved inside the root with
// resolveInRoot (a symlink in the tree means what it means inside the sandbox), then opened one component at
// a time without following any symlink (each step is an open of `/proc/self/fd/<parent>/<name>` with
// O_NOFOLLOW, so the kernel looks the name up in exactly the directory already opened). A running sandbox that
// swaps a directory for a symlink between the two steps gets a refusal, never a file outside its root.
import { closeSync, constants as C, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmdirSync, unlinkSync, writeSync, fsyncSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { NexcageError } from "../core/errors.ts";
import { resolveInRoot } from "../core/paths.ts";
import { ApiError } from "./errors.ts";

/** the mounts a sandbox's spec puts over its root: what is there is not the rootfs, so not reachable here */
const MOUNTED = ["/proc", "/dev", "/sys"];

export interface Entry {
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number;
  mtime: string;
  target?: string;
}

const fdPath = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

function components(rootfs: string, path: string): string[] {
  if (!path.startsWith("/")) throw new NexcageError("invalidSpec", `path ${JSON.stringify(path)}: must be absolute (inside the sandbox)`);
  const host = resolveInRoot(rootfs, path);
  const rel = host.slice(rootfs.replace(/\/+$/, "").length) || "/";
  for (const m of MOUNTED) {
    if (rel === m || rel.startsWith(`${m}/`)) throw new NexcageError("invalidSpec", `path ${path}: ${m} is a mount inside the sandbox, not part of its files; use exec`);
  }
  return rel.split("/").filter(Boolean);
}

function errno(e: unknown, path: string): NexcageError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new NexcageError("notFound", `${path}: no such file or directory`);
  if (code === "ELOOP") return new NexcageError("badState", `${path}: changed into a symbolic link while being opened; try again`);
  if (code === "ENOTDIR") return new NexcageError("invalidSpec", `${path}: a component is not a directory`);
  if (code === "EISDIR") return new NexcageError("invalidSpec", `${path}: is a directory`);
  if (code === "ENOSPC" || code === "EDQUOT") return new NexcageError("storage", `${path}: no space left (the sandbox's disk is full)`);
  if (code === "ENOTEMPTY") return new NexcageError("badState", `${path}: directory not empty`);
  if (code === "EEXIST") return new NexcageError("exists", `${path}: already exists`);
  return new NexcageError("failure", `${path}: ${(e as Error).message}`);
}

/** open the directory the components name, walking from the root; optionally creating missing ones */
export function openDir(rootfs: string, parts: string[], path: string, create: boolean): number {
  let fd = openSync(rootfs, C.O_RDONLY | C.O_DIRECTORY);
  try {
    for (const c of parts) {
      let next: number;
      try {
        next = openSync(fdPath(fd, c), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      } catch (e) {
        // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR: say what really happened
        if ((e as NodeJS.ErrnoException).code === "ENOTDIR" && isLink(fdPath(fd, c))) throw Object.assign(new Error("symlink"), { code: "ELOOP" });
        if ((e as NodeJS.ErrnoException).code !== "ENOENT" || !create) throw e;
        mkdirSync(fdPath(fd, c), { mode: 0o755 });
        next = openSync(fdPath(fd, c), C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
      }
      closeSync(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw errno(e, path);
  }
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function split(rootfs: string, path: string): { dir: string[]; name: string } {
  const parts = components(rootfs, path);
  const name = parts.pop();
  if (!name) throw new NexcageError("invalidSpec", `path ${path}: names the root directory`);
  return { dir: parts, name };
}

function entryOf(dirFd: number, name: string): Entry {
  const st = lstatSync(fdPath(dirFd, name));
  const type = st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : "other";
  const e: Entry = { name, type, size: st.size, mode: st.mode & 0o7777, mtime: st.mtime.toISOString() };
  if (type === "symlink") {
    try {
      e.target = readlinkSync(fdPath(dirFd, name));
    } catch {}
  }
  return e;
}

export function list(rootfs: string, path: string): Entry[] {
  const fd = openDir(rootfs, components(rootfs, path), path, false);
  try {
    return readdirSync(fdPath(fd)).sort().map((n) => entryOf(fd, n));
  } catch (e) {
    throw errno(e, path);
  } finally {
    closeSync(fd);
  }
}

export function stat(rootfs: string, path: string): Entry {
  const { dir, name } = split(rootfs, path);
  const fd = openDir(rootfs, dir, path, false);
  try {
    return entryOf(fd, name);
  } catch (e) {
    throw errno(e, path);
  } finally {
    closeSync(fd);
  }
}

/** a regular file's bytes as a stream (closed at the end or when the client goes) */
export function read(rootfs: string, path: string): { size: number; stream: ReadableStream<Uint8Array> } {
  const { dir, name } = split(rootfs, path);
  const dfd = openDir(rootfs, dir, path, false);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted in the tree must not hang the server; it is refused below
    fd = openSync(fdPath(dfd, name), C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK | C.O_NOCTTY);
  } catch (e) {
    throw errno(e, path);
  } finally {
    closeSync(dfd);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new NexcageError("invalidSpec", `${path}: not a regular file`);
  }
  let closed = false;
  const close = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  const stream = new ReadableStream<Uint8Array>({
    pull(ctl) {
      const buf = Buffer.allocUnsafe(256 * 1024);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) {
        close();
        ctl.close();
      } else ctl.enqueue(buf.subarray(0, n));
    },
    cancel: close,
  });
  return { size: st.size, stream };
}

/**
 * Write a file from a stream: into a temporary name in the same directory, then renamed over the target
 * (readers see the old file or the new one; an aborted upload leaves nothing). Parents are created.
 */
export async function write(rootfs: string, path: string, body: ReadableStream<Uint8Array> | null, o: { mode?: number; maxBytes: number }): Promise<Entry> {
  const { dir, name } = split(rootfs, path);
  const dfd = openDir(rootfs, dir, path, true);
  const tmp = `.nexcage-upload-${randomBytes(6).toString("hex")}`;
  let fd: number | undefined;
  try {
    fd = openSync(fdPath(dfd, tmp), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, o.mode ?? 0o644);
    let total = 0;
    if (body) {
      for await (const chunk of body) {
        total += chunk.length;
        if (total > o.maxBytes) throw new ApiError(413, "payloadTooLarge", `upload larger than the server's limit of ${o.maxBytes} bytes`);
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      }
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    const existing = (() => {
      try {
        return lstatSync(fdPath(dfd, name));
      } catch {
        return undefined;
      }
    })();
    if (existing?.isDirectory()) throw new NexcageError("invalidSpec", `${path}: is a directory`);
    renameSync(fdPath(dfd, tmp), fdPath(dfd, name));
    return entryOf(dfd, name);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(fdPath(dfd, tmp));
    } catch {}
    if (e instanceof NexcageError || e instanceof ApiError) throw e;
    throw errno(e, path);
  } finally {
    closeSync(dfd);
  }
}

/** remove a file, a symlink (not what it points to) or an empty directory */
export function remove(rootfs: string, path: string): void {
  const { dir, name } = split(rootfs, path);
  const dfd = openDir(rootfs, dir, path, false);
  try {
    const st = lstatSync(fdPath(dfd, name));
    if (st.isDirectory()) rmdirSync(fdPath(dfd, name));
    else unlinkSync(fdPath(dfd, name));
  } catch (e) {
    throw errno(e, path);
  } finally {
    closeSync(dfd);
  }
}

export function mkdir(rootfs: string, path: string): Entry {
  const parts = components(rootfs, path);
  closeSync(openDir(rootfs, parts, path, true));
  return stat(rootfs, path);
}
