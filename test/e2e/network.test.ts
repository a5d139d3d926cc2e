// Container networking end to end with Debian's CNI plugins, crun, runc and lxc containers, nftables and tc.
// Everything runs inside network namespaces this file creates (nexcage-net-<pid> for the "host" side with
// the bridge, nexcage-net-<pid>-c for an outside client joined to it by a veth pair); nothing touches the
// machine's own interfaces, routes or firewall, and no packet leaves those namespaces. nexcage is entered
// into the namespace with `nsenter --net` (not `ip netns exec`, which remounts /sys and hides the cgroups).
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { makeBundle } from "../fixtures/busybox.ts";
import { hostSetup, runtimeFor, waitFor } from "./helpers.ts";

// the preload's default does not reach every file in a whole-suite run; these tests wait on real sockets
setDefaultTimeout(120_000);

const NS = `nexcage-net-${process.pid}`;
const CLIENT_NS = `${NS}-c`;
const NSPATH = `/var/run/netns/${NS}`;
// private ranges chosen per run; they exist only inside the two namespaces
const SUBNET = `10.${100 + (process.pid % 100)}.${process.pid % 250}.0/24`;
const PREFIX = SUBNET.split(".").slice(0, 3).join(".");
const HOST_IP = "192.168.251.1"; // the "host" namespace's address towards the client namespace
const CLIENT_IP = "192.168.251.2";

function sh(argv: string[], timeoutMs = 20_000): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", timeout: timeoutMs });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
const inNs = (argv: string[], timeoutMs?: number) => sh(["nsenter", `--net=${NSPATH}`, ...argv], timeoutMs);
const inClient = (argv: string[], timeoutMs?: number) => sh(["nsenter", `--net=/var/run/netns/${CLIENT_NS}`, ...argv], timeoutMs);

function setupNamespaces(): void {
  teardownNamespaces();
  for (const [cmd, what] of [
    [["ip", "netns", "add", NS], "netns"],
    [["ip", "netns", "add", CLIENT_NS], "client netns"],
    [["ip", "-n", NS, "link", "set", "lo", "up"], "lo"],
    [["ip", "-n", CLIENT_NS, "link", "set", "lo", "up"], "client lo"],
    [["ip", "-n", NS, "link", "add", "nxt-h", "type", "veth", "peer", "name", "nxt-c", "netns", CLIENT_NS], "veth"],
    [["ip", "-n", NS, "addr", "add", `${HOST_IP}/30`, "dev", "nxt-h"], "addr"],
    [["ip", "-n", CLIENT_NS, "addr", "add", `${CLIENT_IP}/30`, "dev", "nxt-c"], "client addr"],
    [["ip", "-n", NS, "link", "set", "nxt-h", "up"], "up"],
    [["ip", "-n", CLIENT_NS, "link", "set", "nxt-c", "up"], "client up"],
  ] as const) {
    const r = sh([...cmd]);
    if (r.code !== 0) throw new Error(`test namespace set-up (${what}): ${r.stderr}`);
  }
}

function teardownNamespaces(): void {
  for (const ns of [CLIENT_NS, `${NS}-g`, NS]) if (existsSync(`/var/run/netns/${ns}`)) sh(["ip", "netns", "del", ns]);
}

beforeAll(() => {
  hostSetup();
  setupNamespaces();
});
afterAll(() => teardownNamespaces());

/** A nexcage runtime for `backend` whose every call runs inside the test namespace. */
function netRuntime(backend: string, network: Record<string, unknown> = {}) {
  const rt = runtimeFor(backend, { network: { subnet: SUBNET, bridge: "nxt0", dir: "/nonexistent", ...network } });
  const scratch = join(rt.dir, "scratch");
  mkdirSync(scratch, { recursive: true });
  let n = 0;
  /** no pipes: a created container inherits the CLI's stdio (stderr goes to a file) */
  const nx = (args: string[], env: Record<string, string> = {}) => {
    const errFile = join(scratch, `stderr-${++n}`);
    const r = Bun.spawnSync(["nsenter", `--net=${NSPATH}`, ...rt.argv, ...args], { stdout: "ignore", stderr: Bun.file(errFile), env: { ...process.env, ...env }, timeout: 60_000 });
    const stderr = existsSync(errFile) ? readFileSync(errFile, "utf8") : "";
    rmSync(errFile, { force: true });
    return { code: r.exitCode ?? -1, stderr, signal: r.signalCode };
  };
  /** calls that print (state, port ls, events) */
  const nxOut = (args: string[]) => inNs([...rt.argv, ...args], 30_000);
  const bundles: (() => void)[] = [];
  const bundle = (annotations: Record<string, string>, args = ["httpd", "-f", "-p", "80", "-h", "/www"]) => {
    // CAP_NET_RAW (podman's default set has it) for busybox ping inside the containers
    const b = makeBundle({ args, annotations, edit: (sp) => ["bounding", "effective", "permitted"].forEach((k) => sp.process.capabilities[k].push("CAP_NET_RAW")) });
    mkdirSync(join(b.dir, "rootfs/www"), { recursive: true });
    writeFileSync(join(b.dir, "rootfs/www/index.html"), "hello from nexcage\n");
    bundles.push(b.cleanup);
    return b.dir;
  };
  const run = (id: string, annotations: Record<string, string>, args?: string[]) => {
    const c = nx(["create", "--bundle", bundle(annotations, args), id]);
    expect(c.stderr).toBe("");
    expect(c.code).toBe(0);
    const s = nx(["start", id]);
    expect(s.code).toBe(0);
  };
  const attachment = (id: string) => JSON.parse(readFileSync(join(rt.root, "network/attachments", `${id}.json`), "utf8"));
  const ipOf = (id: string): string => attachment(id).ips[0];
  const exec = (id: string, cmd: string[]) => inNs([...rt.argv, "exec", id, ...cmd], 30_000);
  const cleanup = (all = true) => {
    for (const id of existsSync(join(rt.root, "containers")) ? readdirSync(join(rt.root, "containers")) : []) nx(["delete", "--force", id]);
    if (!all) return;
    for (const c of bundles.splice(0)) c();
    rmSync(rt.dir, { recursive: true, force: true });
  };
  return { rt, nx, nxOut, bundle, run, attachment, ipOf, exec, cleanup };
}

/**
 * Everything a network attachment can leave in the namespace or under the root: veths, host-local leases,
 * nexcage's nft chains, portmap/bridge iptables chains, netns pins, attachment records, port claims.
 */
function leaks(root: string): string[] {
  const found: string[] = [];
  const veths = inNs(["ip", "-o", "link", "show", "type", "veth"]).stdout.split("\n").filter((l) => l.includes("veth") && !l.includes("nxt-h"));
  found.push(...veths.map((l) => `veth ${l.split(":")[1]?.trim()}`));
  const ipam = join(root, "network/ipam/nexcage");
  for (const f of existsSync(ipam) ? readdirSync(ipam) : []) if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) found.push(`lease ${f}`);
  const ruleset = inNs(["nft", "list", "ruleset"]).stdout;
  for (const m of ruleset.matchAll(/chain ((?:eg|sp)-[0-9a-f]+|CNI-DN-[0-9a-f]+|CNI-[0-9a-f]{24})/g)) found.push(`nft chain ${m[1]}`);
  for (const m of ruleset.matchAll(/ip saddr (\d+\.\d+\.\d+\.\d+) .*?(?:accept|jump)/g)) if (m[1]?.startsWith(PREFIX)) found.push(`firewall rule for ${m[1]}`);
  for (const d of ["network/netns", "network/attachments", "network/ports"]) {
    const p = join(root, d);
    for (const f of existsSync(p) ? readdirSync(p) : []) found.push(`${d}/${f}`);
  }
  const ifb = inNs(["ip", "-o", "link", "show", "type", "ifb"]).stdout.trim();
  if (ifb) found.push(`ifb ${ifb}`);
  return found;
}

/** what to look at when a connection that should work does not */
function diagnose(root: string, id: string): string {
  const a = JSON.parse(readFileSync(join(root, "network/attachments", `${id}.json`), "utf8"));
  return [
    `attachment: ${JSON.stringify({ ips: a.ips, mac: a.mac, hostIf: a.hostIf, ports: a.runtimeConfig.portMappings })}`,
    `neigh: ${inNs(["ip", "neigh"]).stdout}`,
    `fdb: ${inNs(["bridge", "fdb", "show", "br", "nxt0"]).stdout}`,
    `container: ${sh(["nsenter", `--net=${a.netns}`, "ip", "addr"]).stdout}${sh(["nsenter", `--net=${a.netns}`, "ss", "-ltn"]).stdout}`,
    `ruleset: ${inNs(["nft", "list", "ruleset"]).stdout}`,
  ].join("\n");
}

/**
 * An HTTP GET with busybox nc (Debian's static busybox wget segfaults), as an argv for a shell: returns the
 * body on stdout; a refused connection says "Connection refused" on stderr.
 */
const get = (host: string, port = 80, timeout = 5) => ["sh", "-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w ${timeout} ${host} ${port} | sed '1,/^.$/d'`];
/** the same from the host side (the test namespaces), with the host's busybox */
const hostGet = (host: string, port = 80, timeout = 5) => ["bash", "-c", `set -o pipefail; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w ${timeout} ${host} ${port} | sed '1,/^.$/d'`];

describe.each(["crun", "runc", "lxc"] as const)("%s: default network", (backend) => {
  const t = netRuntime(backend);
  afterAll(() => t.cleanup());

  test("two containers reach each other by address; a forwarded port reaches the server from outside", () => {
    t.run(`${backend}-a`, { "org.nexcage.network": "nexcage", "org.nexcage.ports": "18080:80/tcp" });
    t.run(`${backend}-b`, { "org.nexcage.network": "nexcage" });
    const a = t.ipOf(`${backend}-a`);
    const b = t.ipOf(`${backend}-b`);
    expect(a.startsWith(PREFIX)).toBe(true);
    expect(b).not.toBe(a);
    // the container sees its address on eth0 and reaches the other one by address (TCP and ICMP)
    expect(t.exec(`${backend}-b`, ["ip", "addr", "show", "eth0"]).stdout).toContain(`inet ${b}/24`);
    expect(t.exec(`${backend}-b`, ["ping", "-c", "1", "-W", "3", a]).code).toBe(0);
    expect(t.exec(`${backend}-b`, get(a)).stdout).toBe("hello from nexcage\n");
    // from the client namespace, through the host's address: portmap's DNAT
    expect(inClient(hostGet(HOST_IP, 18080)).stdout).toBe("hello from nexcage\n");
  });

  test("delete releases everything: veth, lease, rules, pin, record", () => {
    for (const id of [`${backend}-a`, `${backend}-b`]) expect(t.nx(["delete", "--force", id]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });
});

/** an HTTP server on the "host" (the test namespace), port 18501: what egress policies must keep containers from */
function hostServer(dir: string) {
  const www = join(dir, "host-www");
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, "index.html"), "hello from the host\n");
  return Bun.spawn(["nsenter", `--net=${NSPATH}`, "busybox", "httpd", "-f", "-p", "18501", "-h", www], { stdout: "ignore", stderr: "ignore" });
}

describe("crun: network.default and containers that bring their own namespace", () => {
  const t = netRuntime("crun", { default: "nexcage" });
  afterAll(() => t.cleanup());

  test("the default network applies without annotations; a netns given by path is left alone; none opts out", () => {
    t.run("dflt", {}, ["sleep", "1000"]);
    expect(t.attachment("dflt").network).toBe("nexcage");
    // podman's and containerd's case: the config names the namespace (here: the test namespace itself)
    const b = makeBundle({ args: ["sleep", "1000"], edit: (sp) => (sp.linux.namespaces = sp.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: NSPATH } : n))) });
    try {
      const c = t.nx(["create", "--bundle", b.dir, "byo"]);
      expect(c.stderr).toBe("");
      expect(c.code).toBe(0);
      expect(existsSync(join(t.rt.root, "network/attachments/byo.json"))).toBe(false);
      const pid = JSON.parse(t.nxOut(["state", "byo"]).stdout).pid;
      expect(sh(["readlink", `/proc/${pid}/ns/net`]).stdout).toBe(inNs(["readlink", "/proc/self/ns/net"]).stdout);
      t.run("opted-out", { "org.nexcage.network": "none" }, ["sleep", "1000"]);
      expect(existsSync(join(t.rt.root, "network/attachments/opted-out.json"))).toBe(false);
      expect(t.exec("opted-out", ["ip", "link"]).stdout).not.toContain("eth0");
    } finally {
      for (const id of ["dflt", "byo", "opted-out"]) t.nx(["delete", "--force", id]);
      b.cleanup();
    }
    expect(leaks(t.rt.root)).toEqual([]);
  });
});

describe("lxc: a user conflist from the network directory", () => {
  const dir = `/tmp/${NS}-networks`;
  const t = netRuntime("lxc", { dir });
  afterAll(() => {
    t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test("bridge + host-local + tuning from a file, chained by the CNI protocol", () => {
    mkdirSync(dir, { recursive: true });
    const sub = `10.98.${process.pid % 250}`;
    writeFileSync(
      join(dir, "lab.conflist"),
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "lab",
        plugins: [
          { type: "bridge", bridge: "nxt2", isGateway: true, ipam: { type: "host-local", ranges: [[{ subnet: `${sub}.0/24` }]], dataDir: join(t.rt.dir, "lab-ipam") } },
          { type: "tuning", sysctl: { "net.ipv4.conf.eth0.accept_redirects": "0" } },
        ],
      }),
    );
    t.run("lab1", { "org.nexcage.network": "lab" }, ["sleep", "1000"]);
    const a = t.attachment("lab1");
    expect(a.network).toBe("lab");
    expect(a.ips[0].startsWith(`${sub}.`)).toBe(true);
    // tuning ran inside the container's namespace, on the bridge plugin's result
    expect(t.exec("lab1", ["cat", "/proc/sys/net/ipv4/conf/eth0/accept_redirects"]).stdout).toBe("0\n");
    // a name that no file and no built-in has
    const c = t.nx(["create", "--bundle", t.bundle({ "org.nexcage.network": "nope" }), "nope"]);
    expect(c.code).toBe(ExitCode.invalidSpec);
    expect(c.stderr).toContain('network "nope" not found');
    expect(c.stderr).toContain("networks: nexcage, lab, none");
    expect(t.nx(["delete", "--force", "lab1"]).code).toBe(0);
    expect(readdirSync(join(t.rt.dir, "lab-ipam/lab")).filter((f) => /^\d/.test(f))).toEqual([]);
    expect(leaks(t.rt.root)).toEqual([]);
  });
});

describe("crun: ports, egress, bandwidth, stats, health", () => {
  const t = netRuntime("crun");
  let server: ReturnType<typeof hostServer> | undefined;
  beforeAll(() => void (server = hostServer(t.rt.dir)));
  afterAll(() => {
    server?.kill("SIGKILL");
    t.cleanup();
  });
  const NET = { "org.nexcage.network": "nexcage" };

  test("port add/rm/ls on a running container; conflicts name the holder", () => {
    t.run("web", { ...NET, "org.nexcage.ports": "18081:80/tcp" });
    t.run("web2", NET);
    expect(JSON.parse(t.nxOut(["port", "ls", "web", "--format", "json"]).stdout)).toEqual([{ hostPort: 18081, containerPort: 80, protocol: "tcp" }]);
    // added after start: reachable at once
    const added = t.nx(["port", "add", "web", "18082:80/tcp"]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    expect(inClient(hostGet(HOST_IP, 18082)).stdout).toBe("hello from nexcage\n");
    expect(t.nxOut(["port", "ls", "web"]).stdout).toBe("18081:80/tcp\n18082:80/tcp\n");
    // taken by another container: refused, naming it
    const taken = t.nx(["port", "add", "web2", "18081:80"]);
    expect(taken.code).toBe(ExitCode.exists);
    expect(taken.stderr).toContain("host port 18081/tcp is already forwarded to container web");
    // a create asking for a taken port fails whole and leaves nothing of its own
    const c = t.nx(["create", "--bundle", t.bundle({ ...NET, "org.nexcage.ports": "18082:80" }), "web3"]);
    expect(c.code).toBe(ExitCode.exists);
    expect(c.stderr).toContain("container web");
    expect(existsSync(join(t.rt.root, "network/attachments/web3.json"))).toBe(false);
    // a host process listening on the port: refused, naming the process
    const listener = Bun.spawn(["nsenter", `--net=${NSPATH}`, "busybox", "nc", "-l", "-p", "18083"], { stdout: "ignore", stderr: "ignore" });
    try {
      let r = { code: 0, stderr: "" };
      for (let i = 0; i < 50 && !r.stderr.includes("in use"); i++) {
        Bun.sleepSync(20);
        r = t.nx(["port", "add", "web2", "18083:80"]);
        if (r.code === 0) t.nx(["port", "rm", "web2", "18083"]);
      }
      expect(r.code).toBe(ExitCode.exists);
      expect(r.stderr).toMatch(/host port 18083\/tcp is in use on the host by pid \d+ \(busybox\)|in use on the host by pid \d+ \(nc\)/);
    } finally {
      listener.kill("SIGKILL");
    }
    // removed: the connection is refused by the host now
    expect(t.nx(["port", "rm", "web", "18082/tcp"]).code).toBe(0);
    const gone = inClient(hostGet(HOST_IP, 18082, 3));
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain("refused");
    expect(inClient(hostGet(HOST_IP, 18081)).stdout).toBe("hello from nexcage\n");
    const bad = t.nx(["port", "rm", "web", "18099"]);
    expect(bad.code).toBe(ExitCode.notFound);
    expect(t.nx(["port", "add", "web", "nonsense"]).code).toBe(ExitCode.usage);
  });

  test("egress deny-all: connections are refused at once (RST), ping gets ICMP; replies to forwarded ports still flow", () => {
    t.run("closed", { ...NET, "org.nexcage.egress": "deny", "org.nexcage.ports": "18090:80/tcp" });
    const web = t.ipOf("web");
    const r = t.exec("closed", get(web, 80, 10));
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Connection refused");
    const p = t.exec("closed", ["ping", "-c", "1", "-W", "3", web]);
    expect(p.code).not.toBe(0);
    // the host itself (the gateway) is egress too: reachable from others, refused to this one
    expect(t.exec("web", get(`${PREFIX}.1`, 18501)).stdout).toBe("hello from the host\n");
    expect(t.exec("closed", get(`${PREFIX}.1`, 18501, 10)).stderr).toContain("Connection refused");
    // inbound through the forwarded port still works: replies belong to established connections
    const inbound = inClient(hostGet(HOST_IP, 18090));
    if (inbound.stdout !== "hello from nexcage\n") console.error(diagnose(t.rt.root, "closed"));
    expect(inbound.stdout).toBe("hello from nexcage\n");
    // others reach it directly too
    expect(t.exec("web", get(t.ipOf("closed"))).stdout).toBe("hello from nexcage\n");
    // its own chain, keyed by its address, and nobody else's
    expect(inNs(["nft", "list", "map", "inet", "nexcage", "egress4"]).stdout).toContain(t.ipOf("closed"));
    expect(inNs(["nft", "list", "map", "inet", "nexcage", "egress4"]).stdout).not.toContain(`${web} :`);
  });

  test("egress allow-list: the listed address and port pass, the rest is refused", () => {
    const web = t.ipOf("web");
    const web2 = t.ipOf("web2");
    t.run("listed", { ...NET, "org.nexcage.egress": `${web}:80/tcp` });
    expect(t.exec("listed", get(web)).stdout).toBe("hello from nexcage\n");
    const other = t.exec("listed", get(web2, 80, 10));
    expect(other.stdout).toBe("");
    expect(other.stderr).toContain("Connection refused");
  });

  test("bandwidth limits from annotations become tbf qdiscs on the container's veth", () => {
    t.run("slow", { ...NET, "org.nexcage.bandwidth.ingress": "8M", "org.nexcage.bandwidth.egress": "4M" });
    const host = t.attachment("slow").hostIf as string;
    // ingress (towards the container) shapes the host veth's egress; egress is redirected through an ifb
    expect(inNs(["tc", "qdisc", "show", "dev", host]).stdout).toMatch(/tbf .*rate 8Mbit/);
    expect(inNs(["tc", "qdisc", "show"]).stdout).toMatch(/tbf .*rate 4Mbit/);
    expect(t.exec("slow", get(t.ipOf("web"))).stdout).toBe("hello from nexcage\n");
  });

  test("events --stats: runc's network_interfaces with the container's rx/tx", () => {
    for (let i = 0; i < 3; i++) t.exec("web2", get(t.ipOf("web")));
    const line = JSON.parse(t.nxOut(["events", "--stats", "web"]).stdout);
    expect(line.type).toBe("stats");
    const [nic] = line.data.network_interfaces;
    expect(Object.keys(nic)).toEqual(["Name", "RxBytes", "RxPackets", "RxErrors", "RxDropped", "TxBytes", "TxPackets", "TxErrors", "TxDropped"]);
    expect(nic.Name).toBe(t.attachment("web").hostIf);
    expect(nic.RxBytes).toBeGreaterThan(0);
    expect(nic.TxBytes).toBeGreaterThan(0);
    expect(nic.RxPackets).toBeGreaterThan(2);
    // compared with the kernel's own counters of the container's eth0
    const dev = t.exec("web", ["cat", "/proc/net/dev"]).stdout.split("\n").find((l) => l.includes("eth0:")) as string;
    const fields = dev.split(":")[1]?.trim().split(/\s+/).map(Number) ?? [];
    expect(fields[0]).toBeGreaterThanOrEqual(nic.RxBytes);
  });

  test("health runs CNI CHECK on every attachment and names a broken one", () => {
    const ok = JSON.parse(t.nxOut(["health", "--format", "json"]).stdout);
    expect(ok.network.problems).toEqual([]);
    expect(ok.network.ok).toBe(true);
    const web2 = ok.network.containers.find((c: { id: string }) => c.id === "web2");
    expect(web2).toMatchObject({ id: "web2", network: "nexcage", check: "ok" });
    // break web2: its address removed behind nexcage's back (inside its netns)
    const pin = join(t.rt.root, "network/netns/web2");
    expect(sh(["nsenter", `--net=${pin}`, "ip", "addr", "flush", "dev", "eth0"]).code).toBe(0);
    const bad = JSON.parse(t.nxOut(["health", "--format", "json"]).stdout);
    expect(bad.network.ok).toBe(false);
    expect(bad.network.containers.find((c: { id: string }) => c.id === "web2").check).toMatch(/CNI CHECK nexcage\/bridge/);
  });

  test("everything removed by delete --force leaves nothing", () => {
    for (const id of ["web", "web2", "closed", "listed", "slow"]) expect(t.nx(["delete", "--force", id]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
    // the nft tables go with the last policy
    expect(inNs(["nft", "list", "tables"]).stdout).not.toContain("nexcage");
  });
});

describe("crash safety: nothing leaks", () => {
  const t = netRuntime("crun");
  afterAll(() => t.cleanup());
  // each case starts from a clean namespace even when the one before failed half-way
  afterEach(() => t.cleanup(false));
  const ANN = { "org.nexcage.network": "nexcage", "org.nexcage.ports": "18100:80/tcp", "org.nexcage.egress": "deny", "org.nexcage.bandwidth.egress": "10M" };
  const POINTS = [
    "network.after-intent",
    "network.after-pin",
    "network.after-claim",
    "network.after-add-bridge",
    "network.after-add-portmap",
    "network.after-add-firewall",
    "network.after-add-bandwidth",
    "network.after-add",
    "network.after-egress",
  ];

  test.each(POINTS)("create killed at %s, then delete --force", (point) => {
    const id = `crash-${point.split(".")[1]}`;
    const c = t.nx(["create", "--bundle", t.bundle(ANN), id], { NEXCAGE_FAULT: point });
    expect(c.signal).toBe("SIGKILL");
    expect(existsSync(join(t.rt.root, "network/attachments", `${id}.json`))).toBe(true);
    expect(t.nx(["delete", "--force", id]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });

  test("create killed after ADD, then the next create of the same id clears it and works", () => {
    const c = t.nx(["create", "--bundle", t.bundle(ANN), "again"], { NEXCAGE_FAULT: "network.after-add" });
    expect(c.signal).toBe("SIGKILL");
    t.run("again", ANN);
    expect(inClient(hostGet(HOST_IP, 18100)).stdout).toBe("hello from nexcage\n");
    expect(t.nx(["delete", "--force", "again"]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });

  test("a failing plugin rolls the whole create back", () => {
    // a port only portmap could refuse: hostIP that no interface has is fine for iptables, so break the
    // chain instead: a user network whose second plugin does not exist
    const dir = join(t.rt.dir, "networks");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "broken.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "broken", plugins: [{ type: "bridge", bridge: "nxt1", isGateway: true, ipam: { type: "host-local", subnet: `10.99.${process.pid % 250}.0/24`, dataDir: join(t.rt.dir, "ipam2") } }, { type: "no-such-plugin" }] }));
    const cfg = JSON.parse(readFileSync(t.rt.config, "utf8"));
    cfg.network.dir = dir;
    writeFileSync(t.rt.config, JSON.stringify(cfg));
    const c = t.nx(["create", "--bundle", t.bundle({ "org.nexcage.network": "broken" }), "broken"]);
    expect(c.code).toBe(ExitCode.unsupported);
    expect(c.stderr).toContain('CNI plugin "no-such-plugin" not found');
    expect(existsSync(join(t.rt.root, "containers/broken"))).toBe(false);
    expect(leaks(t.rt.root)).toEqual([]);
    expect(readdirSync(join(t.rt.dir, "ipam2/broken")).filter((f) => /^\d/.test(f))).toEqual([]);
    cfg.network.dir = "/nonexistent";
    writeFileSync(t.rt.config, JSON.stringify(cfg));
  });

  test("SIGKILLed nexcage run (foreground), then delete --force", async () => {
    const b = t.bundle(ANN);
    const p = Bun.spawn(["nsenter", `--net=${NSPATH}`, ...t.rt.argv, "run", "--bundle", b, "fg"], { stdout: "ignore", stderr: "ignore", stdin: "ignore" });
    // killed once the container runs (a foreground run then waits on it)
    await waitFor(() => existsSync(join(t.rt.root, "network/attachments/fg.json")) && t.nxOut(["state", "fg"]).stdout.includes('"status": "running"'), 20_000, "the run to start the container");
    p.kill("SIGKILL");
    await p.exited;
    expect(inClient(hostGet(HOST_IP, 18100)).stdout).toBe("hello from nexcage\n");
    expect(t.nx(["delete", "--force", "fg"]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });

  test("the container's init killed: its pinned netns still lets delete remove everything", () => {
    t.run("died", ANN);
    const pid = JSON.parse(t.nxOut(["state", "died"]).stdout).pid;
    process.kill(pid, "SIGKILL");
    Bun.sleepSync(200);
    expect(JSON.parse(t.nxOut(["state", "died"]).stdout).status).toBe("stopped");
    expect(t.nx(["delete", "died"]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });
});

describe("the VM seam: a device joined to the CNI interface by tc redirect", () => {
  const t = netRuntime("crun");
  const GUEST_NS = `${NS}-g`;
  let server: ReturnType<typeof hostServer> | undefined;
  beforeAll(() => void (server = hostServer(t.rt.dir)));
  afterAll(() => {
    server?.kill("SIGKILL");
    t.cleanup();
    if (existsSync(`/var/run/netns/${GUEST_NS}`)) sh(["ip", "netns", "del", GUEST_NS]);
  });

  test("a 'guest' behind the redirect gets the container's address, port forward and egress policy", async () => {
    const { redirect } = await import("../../src/network/tap.ts");
    t.run("vm", { "org.nexcage.network": "nexcage", "org.nexcage.ports": "18110:80/tcp", "org.nexcage.egress": "deny" }, ["sleep", "1000"]);
    const a = t.attachment("vm");
    // the guest stands in for a VM: its NIC (a veth instead of a TAP) carries the container's MAC and address
    expect(sh(["ip", "netns", "add", GUEST_NS]).code).toBe(0);
    const pin = a.netns as string;
    const inPin = (argv: string[]) => sh(["nsenter", `--net=${pin}`, ...argv]);
    const inGuest = (argv: string[]) => sh(["nsenter", `--net=/var/run/netns/${GUEST_NS}`, ...argv]);
    expect(inPin(["ip", "link", "add", "gst0", "type", "veth", "peer", "name", "geth0", "netns", GUEST_NS]).stderr).toBe("");
    expect(inPin(["ip", "link", "set", "gst0", "up"]).code).toBe(0);
    for (const cmd of [["ip", "link", "set", "geth0", "address", a.mac], ["ip", "addr", "add", `${a.ips[0]}/24`, "dev", "geth0"], ["ip", "link", "set", "geth0", "up"], ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", `${PREFIX}.1`]]) {
      expect(inGuest(cmd).stderr).toBe("");
    }
    redirect(pin, "eth0", "gst0");
    const www = join(t.rt.dir, "guest-www");
    mkdirSync(www, { recursive: true });
    writeFileSync(join(www, "index.html"), "hello from the guest\n");
    const httpd = Bun.spawn(["nsenter", `--net=/var/run/netns/${GUEST_NS}`, "busybox", "httpd", "-f", "-p", "80", "-h", www], { stdout: "ignore", stderr: "ignore" });
    try {
      let got = "";
      for (let i = 0; i < 50 && !got; i++) {
        got = inClient(hostGet(HOST_IP, 18110, 2)).stdout;
        if (!got) Bun.sleepSync(50);
      }
      expect(got).toBe("hello from the guest\n");
      // the egress chain sees the guest's traffic as the container's
      expect(inNs(hostGet(`${PREFIX}.1`, 18501)).stdout).toBe("hello from the host\n");
      const out = inGuest(hostGet(`${PREFIX}.1`, 18501, 5));
      expect(out.stderr).toContain("Connection refused");
    } finally {
      httpd.kill("SIGKILL");
    }
  });

  test("joinTap: tap0 next to eth0, both redirects, and what the guest needs", async () => {
    const { joinTap } = await import("../../src/network/tap.ts");
    t.run("vm2", { "org.nexcage.network": "nexcage" }, ["sleep", "1000"]);
    const a = t.attachment("vm2");
    const j = joinTap(a.netns);
    expect(j).toMatchObject({ tap: "tap0", mac: a.mac, addresses: [`${a.ips[0]}/24`], gateway: `${PREFIX}.1`, guestIp: `${a.ips[0]}::${PREFIX}.1:255.255.255.0::eth0:off` });
    const f = sh(["nsenter", `--net=${a.netns}`, "tc", "filter", "show", "dev", "eth0", "ingress"]).stdout;
    expect(f).toContain("Redirect to device tap0");
    expect(sh(["nsenter", `--net=${a.netns}`, "tc", "filter", "show", "dev", "tap0", "ingress"]).stdout).toContain("Redirect to device eth0");
  });

  test("deleting them leaves nothing", () => {
    for (const id of ["vm", "vm2"]) expect(t.nx(["delete", "--force", id]).code).toBe(0);
    expect(leaks(t.rt.root)).toEqual([]);
  });
});
