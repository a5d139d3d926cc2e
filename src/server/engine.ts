// What the sandbox server needs from the engine, as one narrow interface: the server holds policy about
// tenants and quotas, the engine holds policy about containers. RuntimeEngine implements it over the
// in-process Runtime and its snapshot service; unit tests give the server a fake.
//
// exec runs as a child process of this binary (`nexcage exec`): today's engine gives an exec'd process the
// calling process's own stdio (and libcrun's exec blocks its thread until the process exits), so a server
// that streams many execs at once hands each its own pipes and its own process instead.
import type { Status } from "../backends/types.ts";
import { NexcageError } from "../core/errors.ts";
import type { Runtime } from "../runtime.ts";
import type { SnapshotMeta } from "../snapshot/service.ts";

/** a snapshot's metadata without its per-file manifest */
export type SnapshotInfo = Omit<SnapshotMeta, "manifest" | "ref" | "container">;

export interface ExecSpec {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: { uid: number; gid: number };
  /** the exec'd process's host pid is written here (to kill it on timeout or when the client goes) */
  pidFile: string;
  /** engine errors land here as JSON lines, telling them apart from the process's own exit codes */
  logFile: string;
}

export interface ContainerSummary {
  id: string;
  status: Status;
  bundle: string;
  annotations: Record<string, string>;
}

export interface SandboxEngine {
  /** create from a bundle and start; returns the backend it went to */
  launch(id: string, bundle: string): Promise<string>;
  /** undefined when the engine has no such container */
  status(id: string): Promise<Status | undefined>;
  /** SIGKILL and wait until stopped */
  stop(id: string): Promise<void>;
  /** force, and fine when it is already gone */
  remove(id: string): Promise<void>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  stats(id: string): Promise<unknown>;
  list(): Promise<ContainerSummary[]>;
  /** the argv of a child process that runs spec in the container, with that child's stdio */
  execArgv(id: string, spec: ExecSpec): string[];
  snapshotCreate(id: string, name: string): Promise<SnapshotInfo>;
  snapshotList(id: string): Promise<SnapshotInfo[]>;
  snapshotVerify(id: string, name: string): Promise<{ path: string; what: string }[]>;
  snapshotRestore(id: string, name: string): Promise<{ restarted: boolean }>;
  snapshotDelete(id: string, name: string): Promise<void>;
  /** the snapshot's tree copied into dest, an existing empty directory (a new sandbox's rootfs) */
  snapshotCopy(id: string, name: string, dest: string): Promise<void>;
}

const summary = ({ manifest: _m, ref: _r, container: _c, ...rest }: SnapshotMeta): SnapshotInfo => rest;

export class RuntimeEngine implements SandboxEngine {
  constructor(
    private readonly rt: Runtime,
    /** how to run this binary's CLI against the same --root and --config */
    private readonly self: string[],
  ) {}

  async launch(id: string, bundle: string): Promise<string> {
    const rec = await this.rt.create({ id, bundle });
    const { faultPoint } = await import("../core/fault.ts");
    faultPoint("api.create.after-engine-create");
    await this.rt.start(id);
    return rec.backend;
  }

  async status(id: string): Promise<Status | undefined> {
    try {
      return (await this.rt.state(id)).status as Status;
    } catch (e) {
      if (e instanceof NexcageError && e.code === "notFound") return undefined;
      throw e;
    }
  }

  async stop(id: string): Promise<void> {
    const st = await this.status(id);
    if (!st || st === "stopped") return;
    if (st === "paused") await this.rt.resume(id).catch(() => {});
    await this.rt.kill(id, 9).catch((e) => {
      if (!(e instanceof NexcageError && e.code === "badState")) throw e;
    });
    for (let i = 0; i < 500; i++) {
      if ((await this.status(id)) !== "running") return;
      await Bun.sleep(10);
    }
    throw new NexcageError("timeout", `sandbox ${id} did not stop within 5 s of SIGKILL`);
  }

  async remove(id: string): Promise<void> {
    await this.rt.delete(id, true);
  }

  pause(id: string): Promise<void> {
    return this.rt.pause(id);
  }

  resume(id: string): Promise<void> {
    return this.rt.resume(id);
  }

  stats(id: string): Promise<unknown> {
    return this.rt.stats(id);
  }

  async list(): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const id of this.rt.store.ids()) {
      try {
        const st = await this.rt.state(id);
        out.push({ id, status: st.status as Status, bundle: st.bundle, annotations: st.annotations ?? {} });
      } catch {
        // a record being created or removed right now, or damaged: not one of ours to judge here
      }
    }
    return out;
  }

  execArgv(id: string, s: ExecSpec): string[] {
    return [
      ...this.self,
      "--log", s.logFile, "--log-format", "json",
      "exec",
      "--pid-file", s.pidFile,
      ...(s.cwd ? ["--cwd", s.cwd] : []),
      ...(s.user ? ["--user", `${s.user.uid}:${s.user.gid}`] : []),
      ...(s.env ?? []).flatMap((e) => ["--env", e]),
      // everything after the id is the command, dashes included
      id,
      ...s.args,
    ];
  }

  private async snaps() {
    return this.rt.snapshots();
  }

  async snapshotCreate(id: string, name: string): Promise<SnapshotInfo> {
    const max = (await this.rt.getConfig()).snapshots.maxPerContainer;
    return summary(await (await this.snaps()).create(id, name, max ? { maxPerContainer: max } : {}));
  }

  async snapshotList(id: string): Promise<SnapshotInfo[]> {
    return (await (await this.snaps()).listFor(id)).map(summary);
  }

  async snapshotVerify(id: string, name: string) {
    return (await (await this.snaps()).verify(id, name)).map((d) => ({ path: d.path, what: d.what }));
  }

  async snapshotRestore(id: string, name: string) {
    const r = await (await this.snaps()).restore(id, name, { force: true });
    return { restarted: r.restarted };
  }

  async snapshotDelete(id: string, name: string): Promise<void> {
    await (await this.snaps()).delete(id, name);
  }

  async snapshotCopy(id: string, name: string, dest: string): Promise<void> {
    const snaps = await this.snaps();
    const meta = (await snaps.listFor(id)).find((m) => m.name === name);
    if (!meta) throw new NexcageError("notFound", `snapshot ${name} of ${id} does not exist`);
    const st = await this.rt.state(id);
    const { driverFor } = await import("../snapshot/drivers.ts");
    const driver = await driverFor(st.rootfs, meta.driver);
    const view = await driver.view(meta.ref);
    try {
      const { fillRootfs } = await import("../images/rootfs.ts");
      await fillRootfs(view.path, dest);
    } finally {
      await view.close();
    }
  }
}
