// The lxc backend: an OCI bundle as a plain LXC container named by its id under the configured lxcpath
// (engine.ts does the container work). Layout: <lxcpath>/<id>/config (the translated LXC config) and the
// run dir <root>/lxc/<id>/.
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Backend, BackendContext, ContainerRecord, ProbeResult } from "../types.ts";
import { NexcageError } from "../../core/errors.ts";
import type { Resources } from "../../oci/spec.ts";
import { cgroupReadings } from "../common.ts";
import * as engine from "./engine.ts";
import { CONFIG_MARK, DEFAULT_LXCPATH } from "./unmanaged.ts";

/** from the record; a half-created one has none yet, but its run dir says where its config went */
function target(ctx: BackendContext, rec: ContainerRecord): engine.LxcTarget {
  const runDir = `${ctx.backendRoot}/${rec.id}`;
  let lxcpath = rec.data?.lxcpath ? String(rec.data.lxcpath) : undefined;
  if (!lxcpath) {
    try {
      lxcpath = readFileSync(`${runDir}/lxcpath`, "utf8");
    } catch {
      lxcpath = DEFAULT_LXCPATH;
    }
  }
  return { name: rec.id, lxcpath, runDir };
}

export function realRootfs(bundle: string, path: string | undefined): string {
  try {
    return realpathSync(resolve(bundle, path ?? "rootfs"));
  } catch {
    throw new NexcageError("invalidSpec", `root.path: ${resolve(bundle, path ?? "rootfs")}: no such directory`);
  }
}

export const lxcBackend: Backend = {
  name: "lxc",
  capabilities: { nativeHooks: false, pause: true, update: true, exec: true },

  async probe(ctx): Promise<ProbeResult> {
    const r: ProbeResult = { backend: "lxc", ok: true, problems: [], details: { stateRoot: ctx.backendRoot } };
    await engine.probeLiblxc(r);
    r.ok = r.problems.length === 0;
    return r;
  },

  async create(ctx, o) {
    const lxcpath = engine.canonicalLxcpath(o.config.lxc.lxcpath ?? DEFAULT_LXCPATH);
    const confDir = `${lxcpath}/${o.id}`;
    // a plain LXC container of that name is not ours to overwrite
    if (existsSync(confDir)) throw new NexcageError("exists", `an LXC container named ${o.id} already exists in ${lxcpath}`);
    if (o.spec.process?.terminal && !o.consoleSocket) throw new NexcageError("usage", "process.terminal is true: a --console-socket is required");
    const t: engine.LxcTarget = { name: o.id, lxcpath, runDir: `${ctx.backendRoot}/${o.id}` };
    const tr = await engine.prepare(t, o.spec, realRootfs(o.bundle, o.spec.root?.path), ctx.debug);
    mkdirSync(confDir, { mode: 0o750 });
    writeFileSync(`${confDir}/config`, `${CONFIG_MARK} from ${o.bundle}/config.json\n${tr.config.join("\n")}\n`, { mode: 0o640 });
    const { pid, monitor } = await engine.launch(t, o.spec.process?.terminal ? o.consoleSocket : undefined, tr.joinNamespaces);
    return { pid, waitPid: monitor, data: { lxcpath } };
  },

  start: (ctx, rec) => engine.release(target(ctx, rec), rec),
  kill: async (_ctx, rec, sig, all) => engine.signal(rec, sig, all),

  async delete(ctx, rec, force) {
    const t = target(ctx, rec);
    await engine.stopAndClean(t, rec, force);
    rmSync(`${t.lxcpath}/${rec.id}`, { recursive: true, force: true });
  },

  pause: (ctx, rec) => engine.freeze(target(ctx, rec), false),
  resume: (ctx, rec) => engine.freeze(target(ctx, rec), true),
  exec: (ctx, rec, o) => engine.attach(target(ctx, rec), o),
  update: async (_ctx, rec, resources) => engine.updateResources(rec, resources as Resources),
  status: (ctx, rec) => engine.status(target(ctx, rec), rec),
  ...cgroupReadings,
};
