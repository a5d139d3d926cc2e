#!/usr/bin/env bun
// LXC latency, side by side in one run, on the same busybox rootfs:
//   1. lifecycle (create+start+kill+delete) and exec: nexcage's lxc backend (CLI, and the SDK in-process:
//      liblxc over FFI without a process start per verb), the LXC CLIs (lxc-start -d / lxc-attach /
//      lxc-stop -k) and the crun CLI;
//   2. proxmox-lxc on the PVE double: the same container started through liblxc (nexcage's hot path) and
//      through `pct start`.
// Prints medians and ratios.
//
//   bun bench/lxc.ts [--iterations N] [--bin dist/nexcage]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/core/config.ts";
import { Runtime } from "../src/runtime.ts";
import { ensureRootfs, makeBundle } from "../test/fixtures/busybox.ts";
import { pveDouble } from "../test/e2e/helpers.ts";
import { median, timed } from "./lib.ts";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "15" },
    bin: { type: "string", default: resolve(import.meta.dir, "../dist/nexcage") },
  },
});
const N = Number(values.iterations);
const BIN = values.bin as string;
const work = mkdtempSync(`${tmpdir()}/nexcage-bench-lxc-`);
const bundle = makeBundle({ args: ["sleep", "1000"] });

// containers inherit the CLI's stdio on create: no pipes (spawnSync would wait for the container)
function sh(argv: string[]): number {
  const errFile = `${work}/stderr`;
  const t0 = performance.now();
  const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: Bun.file(errFile) });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${readFileSync(errFile, "utf8")}`);
  return ms;
}

type Row = { lifecycle: number[]; exec: number[] };
const rows = new Map<string, Row>();
const row = (name: string) => {
  if (!rows.has(name)) rows.set(name, { lifecycle: [], exec: [] });
  return rows.get(name) as Row;
};

const lxcpath = join(work, "lxcpath");
mkdirSync(lxcpath);
const nxCfg = join(work, "lxc.json");
writeFileSync(nxCfg, JSON.stringify({ defaultBackend: "lxc", lxc: { lxcpath } }));
const nx = [BIN, "--root", join(work, "nx"), "--config", nxCfg];
const sdk = new Runtime({ root: join(work, "sdk"), config: parseConfig({ defaultBackend: "lxc", lxc: { lxcpath: join(work, "sdk-lxcpath") } }, "bench") });
const crun = ["crun", "--root", join(work, "crun")];

// a plain LXC container for the LXC CLIs: the same rootfs, init sleeping, console none
const plainConf = (name: string) => {
  mkdirSync(join(lxcpath, name), { recursive: true });
  writeFileSync(join(lxcpath, name, "config"), [`lxc.rootfs.path = dir:${ensureRootfs()}`, "lxc.rootfs.options = ro", `lxc.uts.name = ${name}`, "lxc.init.cmd = /bin/sleep 1000", "lxc.console.path = none", "lxc.tty.max = 0", "lxc.autodev = 1", "lxc.mount.auto = proc:mixed sys:ro", ""].join("\n"));
};

try {
  // 1. lifecycle and exec, subjects interleaved per iteration so load drift hits all alike
  for (let i = 0; i <= N; i++) {
    const keep = i > 0; // iteration 0 warms caches
    const id = `b${i}`;
    let t = sh([...nx, "create", "--bundle", bundle.dir, `nx-${id}`]) + sh([...nx, "start", `nx-${id}`]);
    const ex = sh([...nx, "exec", `nx-${id}`, "true"]);
    t += sh([...nx, "kill", `nx-${id}`, "KILL"]) + sh([...nx, "delete", "--force", `nx-${id}`]);
    if (keep) row("nexcage lxc (CLI)").lifecycle.push(t), row("nexcage lxc (CLI)").exec.push(ex);

    let s = await timed(() => sdk.create({ id: `sdk-${id}`, bundle: bundle.dir }));
    s += await timed(() => sdk.start(`sdk-${id}`));
    const sx = await timed(() => sdk.exec(`sdk-${id}`, { args: ["true"] }));
    s += await timed(() => sdk.kill(`sdk-${id}`, 9));
    s += await timed(() => sdk.delete(`sdk-${id}`, true));
    if (keep) row("nexcage lxc (SDK)").lifecycle.push(s), row("nexcage lxc (SDK)").exec.push(sx);

    plainConf(`lx-${id}`);
    const lx = ["-n", `lx-${id}`, "-P", lxcpath];
    let l = sh(["lxc-start", ...lx, "-d"]) + sh(["lxc-wait", ...lx, "-s", "RUNNING"]);
    const lxe = sh(["lxc-attach", ...lx, "--", "true"]);
    l += sh(["lxc-stop", ...lx, "-k"]);
    rmSync(join(lxcpath, `lx-${id}`), { recursive: true, force: true });
    if (keep) row("lxc-start/attach CLI").lifecycle.push(l), row("lxc-start/attach CLI").exec.push(lxe);

    let c = sh([...crun, "create", "--bundle", bundle.dir, `cr-${id}`]) + sh([...crun, "start", `cr-${id}`]);
    const ce = sh([...crun, "exec", `cr-${id}`, "true"]);
    c += sh([...crun, "kill", `cr-${id}`, "KILL"]) + sh([...crun, "delete", "--force", `cr-${id}`]);
    if (keep) row("crun CLI").lifecycle.push(c), row("crun CLI").exec.push(ce);
  }
  const base = rows.get("crun CLI") as Row;
  console.log(`lxc lifecycle (create+start+kill+delete; LXC CLI: lxc-start -d + wait + lxc-stop -k) and exec of \`true\`, median ms over ${N} iterations; ratio = subject / crun CLI\n`);
  console.log(`${"subject".padEnd(24)}${"lifecycle".padStart(10)}${"exec".padStart(9)}${"life×".padStart(8)}${"exec×".padStart(8)}`);
  for (const [name, r] of rows) {
    const [lm, em] = [median(r.lifecycle), median(r.exec)];
    console.log(`${name.padEnd(24)}${lm.toFixed(1).padStart(10)}${em.toFixed(1).padStart(9)}${(lm / median(base.lifecycle)).toFixed(2).padStart(8)}${(em / median(base.exec)).toFixed(2).padStart(8)}`);
  }

  // 2. proxmox-lxc: create (pct create + start of the init) and delete, liblxc vs pct start
  const pve = pveDouble(join(work, "pve-node"));
  const paths = ["liblxc", "pct"] as const;
  const px: Record<string, { create: number[]; start: number[]; delete: number[] }> = {};
  const argvFor = (p: string) => {
    const cfg = join(work, `px-${p}.json`);
    writeFileSync(cfg, JSON.stringify({ defaultBackend: "proxmox-lxc", proxmox: { ...pve.proxmox, startPath: p } }));
    return [BIN, "--root", join(work, `px-${p}`), "--config", cfg];
  };
  const pxN = Math.max(3, Math.ceil(N / 2));
  for (let i = 0; i <= pxN; i++) {
    for (const p of paths) {
      const a = argvFor(p);
      const r = (px[p] ??= { create: [], start: [], delete: [] });
      const id = `px-${p}-${i}`;
      const c = sh([...a, "create", "--bundle", bundle.dir, id]);
      const s = sh([...a, "start", id]);
      const d = sh([...a, "delete", "--force", id]);
      if (i === 0) continue;
      r.create.push(c), r.start.push(s), r.delete.push(d);
    }
  }
  // the two paths differ only in how the container's init gets started inside create: liblxc's monitor
  // helper, or `pct start` (config generation + lxc-start -d) and waiting for it to run
  console.log(`\nproxmox-lxc on the PVE double, median ms over ${pxN} iterations (create = VMID claim + pack-or-reuse template + volume + pct create + starting the init; start = releasing the OCI process)\n`);
  console.log(`${"start path".padEnd(12)}${"create".padStart(9)}${"start".padStart(9)}${"delete".padStart(9)}${"create×".padStart(9)}`);
  const lib = px.liblxc as { create: number[] };
  for (const p of paths) {
    const r = px[p] as { create: number[]; start: number[]; delete: number[] };
    console.log(`${p.padEnd(12)}${median(r.create).toFixed(1).padStart(9)}${median(r.start).toFixed(1).padStart(9)}${median(r.delete).toFixed(1).padStart(9)}${(median(r.create) / median(lib.create)).toFixed(2).padStart(9)}`);
  }
} finally {
  bundle.cleanup();
  rmSync(work, { recursive: true, force: true });
}
