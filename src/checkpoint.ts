// checkpoint/restore: CRIU through the backend where `criu check` passes on this host; otherwise a clear
// error with the reason, and --fs-only to take (or restore from) a filesystem snapshot instead.
import { NexcageError } from "./core/errors.ts";
import type { Runtime } from "./runtime.ts";

let criuState: { ok: boolean; why: string } | undefined;

/** whether CRIU works here, and the first line of what `criu check` said when it does not */
export function criuCheck(): { ok: boolean; why: string } {
  if (criuState) return criuState;
  const bin = Bun.which("criu");
  if (!bin) return (criuState = { ok: false, why: "criu is not installed (apt-get install criu)" });
  const r = Bun.spawnSync([bin, "check"], { stdout: "pipe", stderr: "pipe" });
  const text = `${r.stdout.toString()}\n${r.stderr.toString()}`;
  const err = text.split("\n").find((l) => /^Error|error/i.test(l))?.trim();
  const ok = r.exitCode === 0 && !err && /Looks good/i.test(text);
  return (criuState = { ok, why: ok ? "" : `\`criu check\` fails: ${err ?? `exit ${r.exitCode}`}` });
}

export interface CheckpointArgs {
  imagePath?: string | undefined;
  workPath?: string | undefined;
  leaveRunning?: boolean | undefined;
  tcpEstablished?: boolean | undefined;
  fileLocks?: boolean | undefined;
  preDump?: boolean | undefined;
  parentPath?: string | undefined;
  manageCgroupsMode?: string | undefined;
  fsOnly?: boolean | undefined;
}

/** runc's flags, passed on to the backend as runc spells them */
function criuFlags(a: CheckpointArgs): string[] {
  const f: string[] = [];
  if (a.imagePath) f.push("--image-path", a.imagePath);
  if (a.workPath) f.push("--work-path", a.workPath);
  if (a.leaveRunning) f.push("--leave-running");
  if (a.tcpEstablished) f.push("--tcp-established");
  if (a.fileLocks) f.push("--file-locks");
  if (a.preDump) f.push("--pre-dump");
  if (a.parentPath) f.push("--parent-path", a.parentPath);
  if (a.manageCgroupsMode) {
    if (!["soft", "full", "strict", "ignore"].includes(a.manageCgroupsMode)) throw new NexcageError("usage", `invalid --manage-cgroups-mode ${JSON.stringify(a.manageCgroupsMode)}: soft, full, strict or ignore`);
    f.push("--manage-cgroups-mode", a.manageCgroupsMode);
  }
  return f;
}

const FS_NAME = () => `checkpoint-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").replace(/\..*$/, "")}`;

/** returns a line for the user */
export async function checkpoint(rt: Runtime, id: string, a: CheckpointArgs): Promise<string> {
  const flags = criuFlags(a);
  const st = await rt.state(id);
  if (st.status !== "running" && st.status !== "paused") throw new NexcageError("badState", `container ${id} is ${st.status}: only a running container can be checkpointed`);
  if (a.fsOnly) {
    const snaps = await rt.snapshots();
    const m = await snaps.create(id, FS_NAME());
    if (!a.leaveRunning) await rt.kill(id, 9);
    return `filesystem snapshot ${m.name} of ${id} taken (no process state)${a.leaveRunning ? "" : "; the container was stopped"}; bring it back with: nexcage restore --fs-only --snapshot ${m.name} ${id}\n`;
  }
  const criu = criuCheck();
  if (!criu.ok) throw new NexcageError("unsupported", `checkpoint needs CRIU and ${criu.why}; use --fs-only for a filesystem snapshot instead`);
  await rt.checkpointWithCriu(id, flags);
  return "";
}

export interface RestoreArgs {
  bundle?: string | undefined;
  imagePath?: string | undefined;
  workPath?: string | undefined;
  tcpEstablished?: boolean | undefined;
  fileLocks?: boolean | undefined;
  manageCgroupsMode?: string | undefined;
  detach?: boolean | undefined;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  fsOnly?: boolean | undefined;
  snapshot?: string | undefined;
}

export async function restore(rt: Runtime, id: string, a: RestoreArgs): Promise<string> {
  if (a.fsOnly) {
    if (!a.snapshot) throw new NexcageError("usage", "restore --fs-only needs --snapshot NAME (from `nexcage snapshot list ID`)");
    const snaps = await rt.snapshots();
    const st = await rt.state(id);
    await snaps.restore(id, a.snapshot, { force: true });
    if (st.status === "stopped") {
      await rt.delete(id, true);
      await rt.create({ id, bundle: a.bundle ?? st.bundle, ...(a.pidFile ? { pidFile: a.pidFile } : {}), ...(a.consoleSocket ? { consoleSocket: a.consoleSocket } : {}) });
      await rt.start(id);
    }
    return `${id} restarted from filesystem snapshot ${a.snapshot} (processes start afresh)\n`;
  }
  const criu = criuCheck();
  if (!criu.ok) throw new NexcageError("unsupported", `restore needs CRIU and ${criu.why}; use --fs-only --snapshot NAME to restart from a filesystem snapshot instead`);
  if (!a.detach) throw new NexcageError("usage", "restore runs detached here: pass --detach (nexcage does not stay as the restored container's parent)");
  const flags = criuFlags({ ...a, leaveRunning: false, preDump: false });
  await rt.restoreWithCriu({ id, ...(a.bundle ? { bundle: a.bundle } : {}), ...(a.pidFile ? { pidFile: a.pidFile } : {}), ...(a.consoleSocket ? { consoleSocket: a.consoleSocket } : {}) }, flags);
  return "";
}
