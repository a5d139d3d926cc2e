// A fake engine for the server's unit tests: containers are entries in a map, exec runs the command on the
// host (no container), snapshots are copies of the rootfs. It keeps the engine's contract where the server
// relies on it (status undefined when missing, remove idempotent, errors as NexcageError) and records calls.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Status } from "../../src/backends/types.ts";
import { NexcageError } from "../../src/core/errors.ts";
import type { ContainerSummary, ExecSpec, SandboxEngine, SnapshotInfo } from "../../src/server/engine.ts";

export class FakeEngine implements SandboxEngine {
  readonly containers = new Map<string, { status: Status; bundle: string; annotations: Record<string, string> }>();
  readonly calls: string[] = [];
  /** make the next launch fail with this error */
  failLaunch?: NexcageError;

  async launch(id: string, bundle: string): Promise<string> {
    this.calls.push(`launch ${id}`);
    const spec = JSON.parse(readFileSync(`${bundle}/config.json`, "utf8"));
    if (this.failLaunch) {
      const e = this.failLaunch;
      delete this.failLaunch;
      throw e;
    }
    if (this.containers.has(id)) throw new NexcageError("exists", `container with id exists: ${id}`);
    this.containers.set(id, { status: "running", bundle, annotations: spec.annotations ?? {} });
    return spec.annotations?.["org.nexcage.backend"] ?? "fake";
  }
  async status(id: string) {
    return this.containers.get(id)?.status;
  }
  private must(id: string) {
    const c = this.containers.get(id);
    if (!c) throw new NexcageError("notFound", `container does not exist: ${id}`);
    return c;
  }
  async stop(id: string) {
    this.calls.push(`stop ${id}`);
    const c = this.containers.get(id);
    if (c) c.status = "stopped";
  }
  async remove(id: string) {
    this.calls.push(`remove ${id}`);
    this.containers.delete(id);
  }
  async pause(id: string) {
    const c = this.must(id);
    if (c.status !== "running") throw new NexcageError("badState", `container not running: ${id}`);
    c.status = "paused";
  }
  async resume(id: string) {
    const c = this.must(id);
    if (c.status !== "paused") throw new NexcageError("badState", `container not paused: ${id}`);
    c.status = "running";
  }
  async stats(id: string) {
    this.must(id);
    return { pids: { current: 1 } };
  }
  async list(): Promise<ContainerSummary[]> {
    return [...this.containers].map(([id, c]) => ({ id, status: c.status, bundle: c.bundle, annotations: c.annotations }));
  }
  execArgv(id: string, s: ExecSpec): string[] {
    const c = this.containers.get(id);
    if (!c) {
      // as the real child does: the engine error in its JSON log, exit 4
      return ["/bin/sh", "-c", `echo '{"level":"error","msg":"container does not exist: ${id}"}' > '${s.logFile}'; exit 4`];
    }
    const env = (s.env ?? []).map((e) => `export '${e.replace(/'/g, "")}';`).join(" ");
    return ["/bin/sh", "-c", `echo $$ > '${s.pidFile}'; ${env} ${s.cwd ? `cd '${c.bundle}/rootfs${s.cwd}';` : ""} exec "$@"`, "fake-exec", ...s.args];
  }
  private home(id: string) {
    return `${this.must(id).bundle}/.fake-snapshots`;
  }
  async snapshotCreate(id: string, name: string): Promise<SnapshotInfo> {
    const home = this.home(id);
    if (existsSync(`${home}/${name}`)) throw new NexcageError("exists", `snapshot ${name} of ${id} already exists`);
    mkdirSync(home, { recursive: true });
    cpSync(`${this.must(id).bundle}/rootfs`, `${home}/${name}`, { recursive: true, verbatimSymlinks: true });
    const info: SnapshotInfo = { name, driver: "dir", taken: new Date().toISOString(), created: new Date().toISOString(), frozenMs: 0, files: 1, bytes: 1 };
    writeFileSync(`${home}/${name}.json`, JSON.stringify(info));
    return info;
  }
  async snapshotList(id: string): Promise<SnapshotInfo[]> {
    const home = this.home(id);
    if (!existsSync(home)) return [];
    return readdirSync(home).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(`${home}/${f}`, "utf8")));
  }
  async snapshotVerify(id: string, name: string) {
    if (!existsSync(`${this.home(id)}/${name}`)) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    return [];
  }
  async snapshotRestore(id: string, name: string) {
    const c = this.must(id);
    const snap = `${this.home(id)}/${name}`;
    if (!existsSync(snap)) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    rmSync(`${c.bundle}/rootfs`, { recursive: true, force: true });
    cpSync(snap, `${c.bundle}/rootfs`, { recursive: true, verbatimSymlinks: true });
    return { restarted: c.status !== "stopped" };
  }
  async snapshotDelete(id: string, name: string) {
    const home = this.home(id);
    if (!existsSync(`${home}/${name}`)) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    rmSync(`${home}/${name}`, { recursive: true, force: true });
    rmSync(`${home}/${name}.json`, { force: true });
  }
  async snapshotCopy(id: string, name: string, dest: string) {
    const snap = `${this.home(id)}/${name}`;
    if (!existsSync(snap)) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    cpSync(snap, dest, { recursive: true, verbatimSymlinks: true });
  }
}
