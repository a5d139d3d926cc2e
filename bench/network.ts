#!/usr/bin/env bun
// Networking cost, side by side in one run, entirely inside network namespaces this script creates
// (nexcage-net-bench-<pid> holds the bridge, -c is an outside client joined to it by a veth pair):
//  1. create+start (and delete) of a busybox container through nexcage's CLI without a network and on the
//     built-in `nexcage` CNI network, on the crun and lxc backends, interleaved per iteration;
//  2. a TCP echo server (busybox `nc -ll -e cat`) in a container, measured from the client namespace:
//     through the forwarded port (portmap DNAT), routed straight to the container's address, and, where
//     podman's own networking can run here, through `podman run -p` (netavark) on the same host.
// Run it under the e2e lock: flock /work/e2e.lock bun bench/network.ts [--iterations N] [--requests N] [--mib M]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { makeBundle, rootfsTar } from "../test/fixtures/busybox.ts";
import { median } from "./lib.ts";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "15" },
    requests: { type: "string", default: "200" },
    mib: { type: "string", default: "32" },
    bin: { type: "string", default: resolve(import.meta.dir, "../dist/nexcage") },
  },
});
const N = Number(values.iterations);
const NS = `nexcage-net-bench-${process.pid}`;
const CLIENT = `${NS}-c`;
const SUBNET = "10.231.7.0/24";
const HOST_IP = "192.168.252.1";
const work = mkdtempSync(`${tmpdir()}/nexcage-net-bench-`);

function sh(argv: string[], opts: { ok?: boolean; timeout?: number } = {}): { code: number; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: opts.timeout ?? 120_000 });
  const res = { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString(), ms: performance.now() - t0 };
  if (opts.ok !== false && res.code !== 0) throw new Error(`${argv.join(" ")}: ${res.stderr.trim()}`);
  return res;
}
/** a nexcage call that may create a container: no pipes (the container would inherit them) */
function quiet(argv: string[]): number {
  const t0 = performance.now();
  const r = Bun.spawnSync(["nsenter", `--net=/var/run/netns/${NS}`, ...argv], { stdout: "ignore", stderr: "inherit", timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode})`);
  return performance.now() - t0;
}

function setup() {
  for (const cmd of [
    ["ip", "netns", "add", NS],
    ["ip", "netns", "add", CLIENT],
    ["ip", "-n", NS, "link", "set", "lo", "up"],
    ["ip", "-n", CLIENT, "link", "set", "lo", "up"],
    ["ip", "-n", NS, "link", "add", "nxb-h", "type", "veth", "peer", "name", "nxb-c", "netns", CLIENT],
    ["ip", "-n", NS, "addr", "add", `${HOST_IP}/30`, "dev", "nxb-h"],
    ["ip", "-n", CLIENT, "addr", "add", "192.168.252.2/30", "dev", "nxb-c"],
    ["ip", "-n", NS, "link", "set", "nxb-h", "up"],
    ["ip", "-n", CLIENT, "link", "set", "nxb-c", "up"],
    // the client reaches the container subnet (and podman's) through the host namespace: the "direct" case
    ["ip", "-n", CLIENT, "route", "add", "10.0.0.0/8", "via", HOST_IP],
  ]) sh(cmd);
}
function teardown() {
  for (const ns of [CLIENT, NS]) if (existsSync(`/var/run/netns/${ns}`)) sh(["ip", "netns", "del", ns], { ok: false });
  rmSync(work, { recursive: true, force: true });
}

function nexcage(backend: string) {
  const cfg = join(work, `${backend}.json`);
  writeFileSync(cfg, JSON.stringify({ defaultBackend: backend, lxc: { lxcpath: join(work, "lxcpath") }, network: { subnet: SUBNET, bridge: "nxb0", dir: "/nonexistent" } }));
  return [values.bin as string, "--root", join(work, `root-${backend}`), "--config", cfg];
}

const noNet = makeBundle({ args: ["sleep", "1000"] });
const withNet = makeBundle({ args: ["sleep", "1000"], annotations: { "org.nexcage.network": "nexcage" } });

async function lifecycle() {
  const subjects = ["crun", "lxc"].flatMap((backend) => [
    { name: `${backend}, no network`, backend, bundle: noNet.dir, argv: nexcage(backend) },
    { name: `${backend}, nexcage network`, backend, bundle: withNet.dir, argv: nexcage(backend) },
  ]);
  const rows = new Map(subjects.map((s) => [s.name, { cs: [] as number[], del: [] as number[] }]));
  for (let i = 0; i < N; i++) {
    for (const s of subjects) {
      const id = `b${i}-${s.bundle === withNet.dir ? "n" : "x"}`;
      const create = quiet([...s.argv, "create", "--bundle", s.bundle, id]);
      const start = quiet([...s.argv, "start", id]);
      const del = quiet([...s.argv, "delete", "--force", id]);
      rows.get(s.name)?.cs.push(create + start);
      rows.get(s.name)?.del.push(del);
    }
  }
  console.log(`\ncreate+start and delete --force, median ms over ${N} iterations (CLI, one process per verb)\n`);
  console.log("| subject | create+start | delete | create+start ÷ same backend without network |");
  console.log("|---|---|---|---|");
  for (const s of subjects) {
    const r = rows.get(s.name) as { cs: number[]; del: number[] };
    const base = rows.get(`${s.backend}, no network`) as { cs: number[] };
    console.log(`| ${s.name} | ${median(r.cs).toFixed(1)} | ${median(r.del).toFixed(1)} | ${(median(r.cs) / median(base.cs)).toFixed(2)} |`);
  }
}

function client(host: string, port: number) {
  const r = sh(["nsenter", `--net=/var/run/netns/${CLIENT}`, process.execPath, join(import.meta.dir, "net-echo-client.ts"), host, String(port), "--requests", String(values.requests), "--mib", String(values.mib)], { timeout: 180_000 });
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string) as { connectRttMs: number; rttMs: number; mibPerSec: number };
}

async function echo() {
  const argv = nexcage("crun");
  const echoBundle = makeBundle({ args: ["nc", "-ll", "-p", "80", "-e", "cat"], annotations: { "org.nexcage.network": "nexcage", "org.nexcage.ports": "19000:80/tcp" } });
  quiet([...argv, "create", "--bundle", echoBundle.dir, "echo"]);
  quiet([...argv, "start", "echo"]);
  const ip = JSON.parse(readFileSync(join(work, "root-crun/network/attachments/echo.json"), "utf8")).ips[0];
  const results: [string, ReturnType<typeof client>][] = [];
  results.push(["nexcage: forwarded port (portmap DNAT)", client(HOST_IP, 19000)]);
  results.push(["nexcage: routed to the container's address", client(ip, 80)]);
  // podman's own networking (netavark bridge + its port forwarding), in the same namespace
  const store = ["--root", join(work, "podman/root"), "--runroot", join(work, "podman/runroot"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"];
  const P = ["nsenter", `--net=/var/run/netns/${NS}`, "podman", ...store];
  let podmanNote = "";
  try {
    sh([...P, "import", rootfsTar(), "localhost/nexcage-net-bench"]);
    const run = sh([...P, "run", "-d", "--name", "nexcage-net-bench", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "-p", "19001:80", "localhost/nexcage-net-bench", "nc", "-ll", "-p", "80", "-e", "cat"], { ok: false });
    if (run.code !== 0) throw new Error(run.stderr.trim().split("\n").at(-1));
    Bun.sleepSync(300);
    results.push(["podman run -p (netavark), forwarded port", client(HOST_IP, 19001)]);
  } catch (e) {
    podmanNote = `podman's own networking could not run inside the test namespace: ${(e as Error).message}`;
  } finally {
    sh([...P, "rm", "-f", "nexcage-net-bench"], { ok: false });
    sh([...P, "system", "reset", "-f"], { ok: false });
  }
  quiet([...argv, "delete", "--force", "echo"]);
  echoBundle.cleanup();
  const base = results[0]?.[1] as ReturnType<typeof client>;
  console.log(`\nTCP echo (busybox nc -ll -e cat) from the client namespace: medians over ${values.requests} connections / ${Number(values.requests) * 5} round trips, ${values.mib} MiB echoed\n`);
  console.log("| path | connect + 1 B round trip (ms) | 1 B round trip (ms) | echo throughput (MiB/s) | throughput ÷ forwarded port |");
  console.log("|---|---|---|---|---|");
  for (const [name, r] of results) console.log(`| ${name} | ${r.connectRttMs.toFixed(3)} | ${r.rttMs.toFixed(3)} | ${r.mibPerSec.toFixed(1)} | ${(r.mibPerSec / base.mibPerSec).toFixed(2)} |`);
  if (podmanNote) console.log(`\n${podmanNote}`);
}

try {
  teardown();
  mkdirSync(work, { recursive: true });
  setup();
  await lifecycle();
  await echo();
} finally {
  noNet.cleanup();
  withNet.cleanup();
  teardown();
}
