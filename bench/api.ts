#!/usr/bin/env bun
// The sandbox API's cost, side by side in one run, per backend: create→exec→delete through `nexcage serve` on a
// Unix socket (loopback only) against the same steps through the SDK in-process (Runtime: copy the image's
// tree, create+start, exec `true`, delete). Then N sandboxes at once through the API (create, exec, delete),
// and a check that nothing is left: no container, no bundle, no quota held. Bounded: fixed counts, one run.
//
//   bun bench/api.ts [--iterations 20] [--concurrent 50] [--backends crun,lxc] [--bin dist/nexcage]
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../src/core/config.ts";
import { defaultSpec } from "../src/oci/default-spec.ts";
import { Runtime } from "../src/runtime.ts";
import { ociArchive } from "../test/fixtures/busybox.ts";
import { median } from "./lib.ts";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20" },
    concurrent: { type: "string", default: "50" },
    backends: { type: "string", default: "crun,lxc" },
    bin: { type: "string", default: resolve(import.meta.dir, "../dist/nexcage") },
  },
});
const N = Number(values.iterations);
const C = Number(values.concurrent);
const work = mkdtempSync(join(tmpdir(), "nexcage-bench-api-"));
const images = join(work, "images");
mkdirSync(join(images, "busybox"), { recursive: true });
ociArchive(join(work, "busybox.tar"));
Bun.spawnSync(["tar", "-xf", join(work, "busybox.tar"), "-C", join(images, "busybox")]);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};
const fmt = (n: number) => n.toFixed(1).padStart(8);

interface Row {
  subject: string;
  create: number[];
  exec: number[];
  del: number[];
  total: number[];
}

async function viaApi(backend: string): Promise<{ row: Row; concurrent: { ms: number; failed: number; leftovers: string } }> {
  const dir = join(work, backend);
  mkdirSync(dir);
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ defaultBackend: backend, lxc: { lxcpath: join(dir, "lxcpath") } }));
  const base = [values.bin as string, "--root", join(dir, "root"), "--config", config];
  const db = join(dir, "server/server.db");
  const sock = join(dir, "api.sock");
  const cli = (args: string[]) => Bun.spawnSync([...base, ...args, "--db", db]).stdout.toString().trim();
  cli(["tenant", "add", "bench"]);
  const token = cli(["token", "create", "--tenant", "bench"]);
  const server = Bun.spawn([...base, "serve", "--listen", `unix:${sock}`, "--db", db, "--images", images, "--overcommit", "100", "--rate", "10000", "--burst", "10000", "--max-concurrent", String(C * 2)], {
    stdin: "ignore",
    stdout: Bun.file(join(dir, "serve.log")),
    stderr: Bun.file(join(dir, "serve.err")),
  });
  for (let i = 0; i < 500; i++) {
    try {
      if ((await fetch("http://localhost/healthz", { unix: sock })).ok) break;
    } catch {}
    await Bun.sleep(20);
  }
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`http://localhost${path}`, { unix: sock, method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const text = await r.text();
    if (r.status >= 400) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text;
  };
  const one = async () => {
    const t0 = performance.now();
    const id = JSON.parse(await call("POST", "/v1/sandboxes", { image: "busybox", resources: { memory: "64M", vcpus: 0.1 } })).id as string;
    const t1 = performance.now();
    const out = await call("POST", `/v1/sandboxes/${id}/exec`, { command: ["true"] });
    if (!out.includes('"type":"exit","code":0')) throw new Error(`exec: ${out}`);
    const t2 = performance.now();
    await call("DELETE", `/v1/sandboxes/${id}`);
    const t3 = performance.now();
    return [t1 - t0, t2 - t1, t3 - t2, t3 - t0] as const;
  };
  await one(); // the first create unpacks the image into the cache: not what a user pays every time
  const row: Row = { subject: `API over the Unix socket (${backend})`, create: [], exec: [], del: [], total: [] };
  for (let i = 0; i < N; i++) {
    const [c, e, d, t] = await one();
    row.create.push(c);
    row.exec.push(e);
    row.del.push(d);
    row.total.push(t);
  }
  const t0 = performance.now();
  const results = await Promise.allSettled(Array.from({ length: C }, () => one()));
  const ms = performance.now() - t0;
  const failed = results.filter((r) => r.status === "rejected");
  for (const f of failed.slice(0, 3)) console.error(`  concurrent failure: ${(f as PromiseRejectedResult).reason}`);
  const listed = JSON.parse(Bun.spawnSync([...base, "list", "--format", "json"]).stdout.toString() || "null") ?? [];
  const usage = JSON.parse(await call("GET", "/v1/usage")).usage;
  const bundles = readdirSync(join(dir, "server/sandboxes"));
  const leftovers = `${listed.length} containers, ${bundles.length} bundles, ${usage.sandboxes} reservations`;
  server.kill("SIGTERM");
  await server.exited;
  return { row, concurrent: { ms, failed: failed.length, leftovers } };
}

async function viaSdk(backend: string, image: string): Promise<Row> {
  const dir = join(work, `sdk-${backend}`);
  mkdirSync(dir);
  const rt = new Runtime({ root: join(dir, "root"), config: parseConfig({ defaultBackend: backend, lxc: { lxcpath: join(dir, "lxcpath") } }, "bench") });
  const row: Row = { subject: `SDK in-process (${backend})`, create: [], exec: [], del: [], total: [] };
  const spec = defaultSpec({ args: ["sleep", "infinity"], terminal: false }) as Record<string, any>;
  spec.root.readonly = false;
  spec.linux.resources = { devices: [{ allow: false, access: "rwm" }], memory: { limit: 64 << 20, swap: 64 << 20 }, cpu: { quota: 10000, period: 100000 }, pids: { limit: 1024 } };
  for (let i = -1; i < N; i++) {
    const id = `bench-sdk-${backend}-${i + 1}`;
    const bundle = join(dir, id);
    const t0 = performance.now();
    mkdirSync(bundle);
    Bun.spawnSync(["cp", "-a", "--reflink=auto", image, join(bundle, "rootfs")]);
    writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
    await rt.create({ id, bundle });
    await rt.start(id);
    const t1 = performance.now();
    const code = await rt.exec(id, { args: ["true"] });
    if (code !== 0) throw new Error(`sdk exec: ${code}`);
    const t2 = performance.now();
    await rt.delete(id, true);
    rmSync(bundle, { recursive: true, force: true });
    const t3 = performance.now();
    if (i < 0) continue;
    row.create.push(t1 - t0);
    row.exec.push(t2 - t1);
    row.del.push(t3 - t2);
    row.total.push(t3 - t0);
  }
  return row;
}

const rows: Row[] = [];
const conc: string[] = [];
for (const backend of String(values.backends).split(",")) {
  const api = await viaApi(backend);
  const cache = readdirSync(join(work, backend, "server/images/rootfs")).find((n) => n.startsWith("sha256-")) as string;
  const sdk = await viaSdk(backend, join(work, backend, "server/images/rootfs", cache, "rootfs"));
  rows.push(api.row, sdk);
  conc.push(`${backend}: ${C} sandboxes at once (create, exec, delete): ${(api.concurrent.ms / 1000).toFixed(2)} s wall, ${api.concurrent.failed} failed; left behind: ${api.concurrent.leftovers}`);
}
console.log(`\n${N} iterations each, ms (p50 / p99); ratio = API total p50 ÷ SDK total p50 of the same backend\n`);
console.log(`${"subject".padEnd(36)}${"create p50".padStart(11)}${"p99".padStart(8)}${"exec p50".padStart(10)}${"p99".padStart(8)}${"delete p50".padStart(11)}${"p99".padStart(8)}${"total p50".padStart(10)}${"p99".padStart(8)}   ratio`);
for (let i = 0; i < rows.length; i += 2) {
  const [api, sdk] = [rows[i] as Row, rows[i + 1] as Row];
  for (const r of [api, sdk]) {
    console.log(
      `${r.subject.padEnd(36)}${fmt(median(r.create)).padStart(11)}${fmt(pct(r.create, 99))}${fmt(median(r.exec)).padStart(10)}${fmt(pct(r.exec, 99))}${fmt(median(r.del)).padStart(11)}${fmt(pct(r.del, 99))}${fmt(median(r.total)).padStart(10)}${fmt(pct(r.total, 99))}   ${(median(r.total) / median(sdk.total)).toFixed(2)}`,
    );
  }
}
console.log(`\n${conc.join("\n")}`);
rmSync(work, { recursive: true, force: true });
