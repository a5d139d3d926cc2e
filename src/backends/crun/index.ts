// crun through libcrun over bun:ffi (src/native/crun.ts). libcrun always runs in a fork()ed child of the
// native shim (it assumes a single-threaded process that owns the signal mask); nexcage keeps the record
// and derives status from /proc and libcrun's exec fifo, so `state` never loads the library.
import { existsSync, mkdirSync } from "node:fs";
import type { Backend, BackendContext, ContainerRecord, ProbeResult, Status } from "../types.ts";
import { NexcageError } from "../../core/errors.ts";
import { cgroupMode, hybridV2Controllers } from "../../core/proc.ts";
import { cgroupReadings, derivedStatus, readPidFile } from "../common.ts";

async function native() {
  return import("../../native/crun.ts");
}

function g(ctx: BackendContext) {
  mkdirSync(ctx.backendRoot, { recursive: true, mode: 0o700 });
  return { stateRoot: ctx.backendRoot, systemdCgroup: ctx.systemdCgroup };
}

/** Why libcrun cannot manage cgroups on this host, with the fix; undefined when it can. */
export function cgroupProblem(mode = cgroupMode(), ctrls = mode === "hybrid" ? hybridV2Controllers() : []): string | undefined {
  if (mode !== "hybrid" || !ctrls.length) return undefined;
  const fix = ctrls.map((c) => `mkdir -p /sys/fs/cgroup/${c} && mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`).join(" && ");
  return `cgroups are in hybrid mode with controllers on cgroup2 (${ctrls.join(", ")}), which libcrun refuses ("cgroups in hybrid mode not supported"): move them to v1 with \`${fix}\`, or boot with systemd.unified_cgroup_hierarchy=1`;
}

export const crunBackend: Backend = {
  name: "crun",
  capabilities: { nativeHooks: true, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "crun", ok: true, problems: [], details: { cgroups: cgroupMode(), stateRoot: ctx.backendRoot } };
    const cg = cgroupProblem();
    if (cg) r.problems.push(cg);
    try {
      r.details.libcrun = (await native()).crunVersion();
    } catch (e) {
      r.problems.push(`libcrun shim cannot load: ${(e as Error).message} (needs libyajl2, libseccomp2, libcap2, libsystemd0)`);
    }
    r.ok = r.problems.length === 0;
    return r;
  },

  async create(ctx, o) {
    const cg = cgroupProblem();
    if (cg) throw new NexcageError("unsupported", `crun backend: ${cg}`);
    (await native()).crunCreate({
      ...g(ctx),
      id: o.id,
      bundle: o.bundle,
      pidFile: o.pidFile,
      ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}),
      preserveFds: o.preserveFds,
      noPivot: o.noPivot,
      noNewKeyring: o.noNewKeyring,
    });
    return { pid: readPidFile(o.pidFile) };
  },

  async start(ctx, rec) {
    (await native()).crunStart(g(ctx), rec.id);
  },

  async kill(ctx, rec, signal, all) {
    (await native()).crunKill(g(ctx), rec.id, signal, all);
  },

  async delete(ctx, rec, force) {
    // a half-created container may never have reached libcrun: nothing to remove there then
    if (!existsSync(`${ctx.backendRoot}/${rec.id}`)) return;
    (await native()).crunDelete(g(ctx), rec.id, force);
  },

  async pause(ctx, rec) {
    (await native()).crunPause(g(ctx), rec.id);
  },

  async resume(ctx, rec) {
    (await native()).crunResume(g(ctx), rec.id);
  },

  async exec(ctx, rec, o) {
    return (await native()).crunExec(g(ctx), rec.id, {
      processFile: o.processFile,
      detach: o.detach,
      preserveFds: o.preserveFds,
      ...(o.consoleSocket ? { consoleSocket: o.consoleSocket } : {}),
      ...(o.pidFile ? { pidFile: o.pidFile } : {}),
    });
  },

  async update(ctx, rec, resources) {
    (await native()).crunUpdate(g(ctx), rec.id, JSON.stringify(resources));
  },

  status(ctx: BackendContext, rec: ContainerRecord): Status {
    return derivedStatus(rec, `${ctx.backendRoot}/${rec.id}/exec.fifo`);
  },

  ...cgroupReadings,
};
