// runc as a subprocess, with its own --root under nexcage's root. runc does the container work (and runs
// the OCI hooks itself); nexcage keeps the record and derives status from /proc and the exec fifo.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import type { Backend, BackendContext, ContainerRecord, CreateOptions, ExecOptions, ProbeResult, Status } from "../types.ts";
import { NexcageError, toNexcageError } from "../../core/errors.ts";
import { cgroupReadings, derivedStatus, readPidFile } from "../common.ts";

export function runcPath(): string {
  return process.env.NEXCAGE_RUNC ?? (existsSync("/usr/sbin/runc") ? "/usr/sbin/runc" : "runc");
}

interface RunOpts {
  /** give runc (and so the container) our stdin/stdout/stderr */
  inheritStdio?: boolean;
  /** extra fds 3..3+n-1 handed down as they are (--preserve-fds) */
  preserveFds?: number;
  stdin?: string;
}

/** Run runc; on failure throw its own error text (from its JSON log), classified. */
async function runc(ctx: BackendContext, args: string[], opts: RunOpts = {}): Promise<number> {
  mkdirSync(ctx.backendRoot, { recursive: true, mode: 0o700 });
  const logFile = `${ctx.backendRoot}/.log.${process.pid}.json`;
  const global = ["--root", ctx.backendRoot, "--log", logFile, "--log-format", "json"];
  if (ctx.systemdCgroup) global.push("--systemd-cgroup");
  if (ctx.debug) global.push("--debug");
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    const extra = Array.from({ length: opts.preserveFds ?? 0 }, (_, i) => i + 3);
    proc = Bun.spawn([runcPath(), ...global, ...args], {
      stdio: [
        opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : opts.inheritStdio ? "inherit" : "ignore",
        opts.inheritStdio ? "inherit" : "ignore",
        // runc repeats its error on stderr; keep that away from the caller unless the container owns stderr
        opts.inheritStdio ? "inherit" : "ignore",
        ...extra,
      ],
    });
  } catch (e) {
    throw new NexcageError("unsupported", `runc backend: cannot run ${runcPath()}: ${(e as Error).message}`);
  }
  const code = await proc.exited;
  const msg = lastError(logFile);
  rmSync(logFile, { force: true });
  if (code !== 0 && msg !== undefined) {
    const err = classify(msg);
    err.printed = opts.inheritStdio === true; // runc wrote it to the stderr it shares with us
    throw err;
  }
  return code;
}

function lastError(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  let msg: string | undefined;
  for (const line of text.split("\n")) {
    try {
      const o = JSON.parse(line) as { level?: string; msg?: string };
      if ((o.level === "error" || o.level === "fatal") && o.msg) msg = o.msg;
    } catch {}
  }
  return msg;
}

function classify(msg: string): NexcageError {
  const m = msg.trim();
  if (/does not exist/.test(m)) return new NexcageError("notFound", m);
  if (/permission denied/i.test(m)) return new NexcageError("permission", m);
  if (/executable file not found|no such file or directory/.test(m)) return new NexcageError("notExecutable", m);
  if (/not running|not stopped|already running|not paused|stopped/.test(m)) return new NexcageError("badState", m);
  if (/hook/.test(m)) return new NexcageError("hookFailed", m);
  return new NexcageError("failure", m);
}

export const runcBackend: Backend = {
  name: "runc",
  capabilities: { nativeHooks: true, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "runc", ok: true, problems: [], details: { binary: runcPath(), root: ctx.backendRoot } };
    try {
      const p = Bun.spawnSync([runcPath(), "--version"], { stdout: "pipe", stderr: "pipe" });
      if (p.exitCode !== 0) throw new Error(p.stderr.toString().trim());
      r.details.version = p.stdout.toString().split("\n")[0]?.replace(/^runc version /, "") ?? "";
    } catch (e) {
      r.ok = false;
      r.problems.push(`runc binary not usable (${runcPath()}): ${(e as Error).message}; install the runc package or set NEXCAGE_RUNC`);
    }
    return r;
  },

  async create(ctx, o: CreateOptions) {
    const args = ["create", "--bundle", o.bundle, "--pid-file", o.pidFile];
    if (o.consoleSocket) args.push("--console-socket", o.consoleSocket);
    if (o.noPivot) args.push("--no-pivot");
    if (o.noNewKeyring) args.push("--no-new-keyring");
    if (o.preserveFds) args.push("--preserve-fds", String(o.preserveFds));
    const code = await runc(ctx, [...args, o.id], { inheritStdio: true, preserveFds: o.preserveFds });
    if (code !== 0) throw new NexcageError("failure", `runc create exited with status ${code}`);
    return { pid: readPidFile(o.pidFile) };
  },

  async checkpoint(ctx, rec, flags) {
    await check(runc(ctx, ["checkpoint", ...flags, rec.id]), "checkpoint");
  },

  async restoreCheckpoint(ctx, o, flags) {
    const args = ["restore", "--detach", "--bundle", o.bundle, "--pid-file", o.pidFile, ...flags];
    if (o.consoleSocket) args.push("--console-socket", o.consoleSocket);
    const code = await runc(ctx, [...args, o.id], { inheritStdio: true });
    if (code !== 0) throw new NexcageError("failure", `runc restore exited with status ${code}`);
    return { pid: readPidFile(o.pidFile) };
  },

  async start(ctx, rec) {
    await check(runc(ctx, ["start", rec.id]), "start");
  },

  async kill(ctx, rec, signal, all) {
    await check(runc(ctx, ["kill", ...(all ? ["--all"] : []), rec.id, String(signal)]), "kill");
  },

  async delete(ctx, rec, force) {
    try {
      await check(runc(ctx, ["delete", ...(force ? ["--force"] : []), rec.id]), "delete");
    } catch (e) {
      // a half-created container may never have reached runc: nothing to remove there
      if (!(e instanceof NexcageError && e.code === "notFound")) throw e;
    }
    rmSync(`${ctx.backendRoot}/${rec.id}`, { recursive: true, force: true });
  },

  async pause(ctx, rec) {
    await check(runc(ctx, ["pause", rec.id]), "pause");
  },

  async resume(ctx, rec) {
    await check(runc(ctx, ["resume", rec.id]), "resume");
  },

  async exec(ctx, rec, o: ExecOptions) {
    const args = ["exec", "--process", o.processFile];
    if (o.detach) args.push("--detach");
    if (o.pidFile) args.push("--pid-file", o.pidFile);
    if (o.consoleSocket) args.push("--console-socket", o.consoleSocket);
    if (o.preserveFds) args.push("--preserve-fds", String(o.preserveFds));
    // runc exec's own exit code is the process's: pass it through
    return runc(ctx, [...args, rec.id], { inheritStdio: true, preserveFds: o.preserveFds });
  },

  async update(ctx, rec, resources) {
    await check(runc(ctx, ["update", "--resources", "-", rec.id], { stdin: JSON.stringify(resources) }), "update");
  },

  status(ctx: BackendContext, rec: ContainerRecord): Status {
    return derivedStatus(rec, `${ctx.backendRoot}/${rec.id}/exec.fifo`);
  },

  ...cgroupReadings,
};

async function check(p: Promise<number>, verb: string): Promise<void> {
  let code: number;
  try {
    code = await p;
  } catch (e) {
    throw toNexcageError(e);
  }
  if (code !== 0) throw new NexcageError("failure", `runc ${verb} exited with status ${code}`);
}
