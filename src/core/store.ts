// State store under --root:
//   <root>/containers/<id>/state.json   nexcage's record (atomic: temp file + rename)
//   <root>/locks/<id>.lock              per-container lock (POSIX record lock, see native/libc.ts)
//   <root>/<backend>/                   each backend's own state (runc --root, libcrun state_root ...)
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import * as v from "valibot";
import { BACKEND_NAMES, type ContainerRecord } from "../backends/types.ts";
import { NexcageError } from "./errors.ts";

const RecordSchema = v.object({
  id: v.string(),
  backend: v.picklist(BACKEND_NAMES),
  bundle: v.string(),
  rootfs: v.string(),
  created: v.string(),
  owner: v.string(),
  annotations: v.record(v.string(), v.string()),
  pid: v.pipe(v.number(), v.integer()),
  pidStartTime: v.number(),
  creating: v.optional(v.boolean()),
  data: v.optional(v.record(v.string(), v.union([v.string(), v.number()]))),
});

export const DEFAULT_ROOT = "/run/nexcage";
const LOCK_TIMEOUT_MS = 30_000;

export class StateStore {
  constructor(readonly root: string) {}

  containerDir(id: string): string {
    return `${this.root}/containers/${id}`;
  }

  backendRoot(name: string): string {
    return `${this.root}/${name}`;
  }

  /** Read a record; undefined when there is none. A corrupt file is an error, never silently dropped. */
  read(id: string): ContainerRecord | undefined {
    let text: string;
    try {
      text = readFileSync(`${this.containerDir(id)}/state.json`, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new NexcageError("failure", `state of container ${id} is corrupt: ${this.containerDir(id)}/state.json is not JSON`);
    }
    const r = v.safeParse(RecordSchema, data);
    if (!r.success) throw new NexcageError("failure", `state of container ${id} is corrupt: ${r.issues[0].message}`);
    return r.output as ContainerRecord;
  }

  /** Atomic write: a reader sees the old record or the new one, never a torn file. */
  write(rec: ContainerRecord): void {
    const dir = this.containerDir(rec.id);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    const tmp = `${dir}/.state.json.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    renameSync(tmp, `${dir}/state.json`);
  }

  remove(id: string): void {
    rmSync(this.containerDir(id), { recursive: true, force: true });
  }

  ids(): string[] {
    try {
      return readdirSync(`${this.root}/containers`).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  }

  /**
   * Run fn holding the per-container lock. Concurrent calls for the same id queue up (or fail as busy after
   * 30 s); calls for different ids never wait on each other. Two layers: POSIX record locks exclude other
   * processes but are per-process (a second F_SETLK from this process would "succeed", and closing any fd of
   * the file drops the lock), so calls within this process queue on a promise chain per lock file first.
   */
  async withLock<T>(id: string, fn: () => Promise<T>, opts: { removeAfter?: () => boolean } = {}): Promise<T> {
    const path = `${this.root}/locks/${id}.lock`;
    const prev = inProcess.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    inProcess.set(path, tail);
    await prev;
    try {
      return await this.withFileLock(id, path, fn, opts);
    } finally {
      release();
      if (inProcess.get(path) === tail) inProcess.delete(path);
    }
  }

  private async withFileLock<T>(id: string, path: string, fn: () => Promise<T>, opts: { removeAfter?: () => boolean }): Promise<T> {
    const { tryLockFile } = await import("../native/libc.ts");
    mkdirSync(`${this.root}/locks`, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    let fd: number;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      fd = openSync(path, "a", 0o600);
      if (tryLockFile(fd)) {
        // the holder before us may have unlinked the file after we opened it: then our lock guards nothing
        if (sameFile(fd, path)) break;
      }
      closeSync(fd);
      if (Date.now() > deadline) throw new NexcageError("busy", `container ${id} is locked by another nexcage process`);
      await Bun.sleep(delay);
    }
    heldFiles.add(path);
    try {
      return await fn();
    } finally {
      if (opts.removeAfter?.()) {
        try {
          unlinkSync(path);
        } catch {}
      }
      heldFiles.delete(path);
      closeSync(fd); // closing releases the record lock
    }
  }

  /** Is some process (this one included) holding this id's lock right now? */
  async isLocked(id: string): Promise<boolean> {
    const path = `${this.root}/locks/${id}.lock`;
    // never open+close a second fd on a file we hold: closing it would drop our own record lock
    if (heldFiles.has(path)) return true;
    let fd: number;
    try {
      fd = openSync(path, "r+");
    } catch {
      return false;
    }
    try {
      const { tryLockFile } = await import("../native/libc.ts");
      if (!tryLockFile(fd)) return true;
      tryLockFile(fd, false);
      return false;
    } finally {
      closeSync(fd);
    }
  }
}

/** lock file path → tail of the queue of this process's callers */
const inProcess = new Map<string, Promise<void>>();
/** lock files whose record lock this process holds now */
const heldFiles = new Set<string>();

function sameFile(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}
