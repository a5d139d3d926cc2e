#!/usr/bin/env bun
// Lifecycle latency, side by side in one run: create+start+kill+delete through nexcage (crun and runc
// backends), through nexcage's SDK in-process (crun backend, no process start per verb) and through the
// crun and runc CLIs directly, on the same busybox bundle; then `state` latency on a running container.
// Prints medians and ratios against the crun CLI.
//
//   bun bench/lifecycle.ts [--iterations N] [--state-iterations M] [--bin dist/nexcage]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/core/config.ts";
import { Runtime } from "../src/runtime.ts";
import { makeBundle } from "../test/fixtures/busybox.ts";
import { median, timed } from "./lib.ts";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20" },
    "state-iterations": { type: "string", default: "50" },
    bin: { type: "string", default: resolve(import.meta.dir, "../dist/nexcage") },
  },
});
const N = Number(values.iterations);
const M = Number(values["state-iterations"]);
const work = mkdtempSync(`${tmpdir()}/nexcage-bench-`);
const bundle = makeBundle({ args: ["sleep", "1000"] });

interface Subject {
  name: string;
  /** prefix of container ids: subjects must not share ids, or they would share cgroup paths */
  tag: string;
  argv: string[];
}
function nexcage(backend: string): Subject {
  const cfg = `${work}/${backend}.json`;
  writeFileSync(cfg, JSON.stringify({ defaultBackend: backend }));
  return { name: `nexcage (${backend})`, tag: `nx${backend}`, argv: [values.bin as string, "--root", `${work}/nx-${backend}`, "--config", cfg] };
}
const subjects: Subject[] = [
  nexcage("crun"),
  nexcage("runc"),
  { name: "crun", tag: "crun", argv: ["crun", "--root", `${work}/crun`] },
  { name: "runc", tag: "runc", argv: ["runc", "--root", `${work}/runc`] },
];

// the container inherits the CLI's stdio on create: no pipes (spawnSync would wait for the container)
function sh(argv: string[]): number {
  const t0 = performance.now();
  const r = Bun.spawnSync(argv, { stdout: "ignore", stderr: "inherit" });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode})`);
  return ms;
}


// the same engine in-process, as a `#!/usr/bin/env bun` ops script drives it: no process start per verb
const sdk = new Runtime({ root: `${work}/sdk`, config: parseConfig({ defaultBackend: "crun" }, "bench") });

type Row = { create: number[]; start: number[]; kill: number[]; delete: number[]; total: number[]; state: number[] };
const SDK = "nexcage SDK (crun)";
const results = new Map<string, Row>();
for (const name of [...subjects.map((s) => s.name), SDK]) results.set(name, { create: [], start: [], kill: [], delete: [], total: [], state: [] });

try {
  // interleave subjects per iteration so that drift in the machine's load hits all of them alike
  for (let i = 0; i < N + 1; i++) {
    for (const s of subjects) {
      const id = `${s.tag}-${i}`;
      const c = sh([...s.argv, "create", "--bundle", bundle.dir, "--pid-file", `${work}/${s.tag}.pid`, id]);
      const st = sh([...s.argv, "start", id]);
      const k = sh([...s.argv, "kill", id, "KILL"]);
      const d = sh([...s.argv, "delete", "--force", id]);
      if (i === 0) continue; // warm-up (page cache, library loading)
      const row = results.get(s.name) as Row;
      row.create.push(c);
      row.start.push(st);
      row.kill.push(k);
      row.delete.push(d);
      row.total.push(c + st + k + d);
    }
    const id = `sdk-${i}`;
    const c = await timed(() => sdk.create({ id, bundle: bundle.dir }));
    const st = await timed(() => sdk.start(id));
    const k = await timed(() => sdk.kill(id, 9));
    const d = await timed(() => sdk.delete(id, true));
    if (i === 0) continue;
    const row = results.get(SDK) as Row;
    row.create.push(c);
    row.start.push(st);
    row.kill.push(k);
    row.delete.push(d);
    row.total.push(c + st + k + d);
  }
  for (const s of subjects) {
    sh([...s.argv, "create", "--bundle", bundle.dir, `${s.tag}-state`]);
    sh([...s.argv, "start", `${s.tag}-state`]);
  }
  await sdk.create({ id: "sdk-state", bundle: bundle.dir });
  await sdk.start("sdk-state");
  for (let i = 0; i < M; i++) {
    for (const s of subjects) (results.get(s.name) as Row).state.push(sh([...s.argv, "state", `${s.tag}-state`]));
    (results.get(SDK) as Row).state.push(await timed(() => sdk.state("sdk-state")));
  }
  await sdk.delete("sdk-state", true);
  for (const s of subjects) sh([...s.argv, "delete", "--force", `${s.tag}-state`]);

  const base = results.get("crun") as Row;
  const cols = ["create", "start", "kill", "delete", "total", "state"] as const;
  console.log(`lifecycle latency, median ms over ${N} iterations (state: ${M}); ratio = subject / crun CLI\n`);
  console.log(`${"subject".padEnd(20)}${cols.map((c) => c.padStart(9)).join("")}${"total×".padStart(9)}${"state×".padStart(9)}`);
  for (const name of results.keys()) {
    const r = results.get(name) as Row;
    const meds = cols.map((c) => median(r[c]));
    const ratio = (c: "total" | "state") => (median(r[c]) / median(base[c])).toFixed(2);
    console.log(`${name.padEnd(20)}${meds.map((m) => m.toFixed(1).padStart(9)).join("")}${ratio("total").padStart(9)}${ratio("state").padStart(9)}`);
  }
} finally {
  for (const s of subjects) Bun.spawnSync([...s.argv, "delete", "--force", `${s.tag}-state`], { stdout: "ignore", stderr: "ignore" });
  await sdk.delete("sdk-state", true).catch(() => {});
  bundle.cleanup();
  rmSync(work, { recursive: true, force: true });
}
