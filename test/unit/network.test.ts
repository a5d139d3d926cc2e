// src/network: network selection, annotation parsing (ports, egress, bandwidth), the CNI plugin input,
// the egress nft script, CNI result reading. Pure functions, no root needed.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/core/config.ts";
import { idle, pluginInput, portmapChain, type ConfList } from "../../src/network/cni.ts";
import { chainKey, egressScript } from "../../src/network/egress.ts";
import { describe as describeResult, readNetDev } from "../../src/network/index.ts";
import { builtinNetwork } from "../../src/network/networks.ts";
import { parseEgress, parsePortRefs, parsePorts, parseRate, selectNetwork } from "../../src/network/select.ts";
import { expectError } from "./expect-error.ts";

const settings = (network: unknown = {}) => parseConfig({ network }, "test").network;
const NEW_NETNS = { namespaces: [{ type: "network" as const }, { type: "mount" as const }] };
const spec = (annotations: Record<string, string> = {}, linux: Record<string, unknown> = NEW_NETNS) => ({ annotations, linux }) as never;

describe("network config", () => {
  test("defaults: none, the built-in bridge and subnet, Debian's plugin dir first", () => {
    const s = settings();
    expect(s).toMatchObject({ default: "none", bridge: "nexcage0", subnet: "10.87.0.0/16", dir: "/etc/nexcage/networks", routing: [], timeout: 60 });
    expect(s.pluginDirs[0]).toBe("/usr/lib/cni");
  });
  test("bad values are refused with the path", () => {
    expectError(() => settings({ subnet: "10.0.0.0" }), "invalidSpec", "network.subnet");
    expectError(() => settings({ bridge: "a-very-long-bridge-name" }), "invalidSpec", "network.bridge");
    expectError(() => settings({ routing: [{ network: "x" }] }), "invalidSpec", "network.routing[0]", "`id` or `annotation`");
    expectError(() => settings({ routing: [{ id: "^(", network: "x" }] }), "invalidSpec", "network.routing[0]");
    expectError(() => settings({ unknown: 1 }), "invalidSpec", "network");
  });
  test("the built-in network: bridge + host-local with the configured subnet, portmap, firewall, bandwidth", () => {
    const l = builtinNetwork(settings({ subnet: "10.9.0.0/24", bridge: "br9" }), "/run/x/ipam");
    expect(l.plugins.map((p) => p.type)).toEqual(["bridge", "portmap", "firewall", "bandwidth"]);
    expect(l.plugins[0]).toMatchObject({ bridge: "br9", isGateway: true, ipMasq: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.9.0.0/24" }]], dataDir: "/run/x/ipam" } });
  });
});

describe("selectNetwork", () => {
  test("default none: no network, runc's behaviour", () => {
    expect(selectNetwork(settings(), "c1", "crun", spec())).toBeUndefined();
  });
  test("annotation, then rules, then the default", () => {
    const s = settings({ default: "nexcage", routing: [{ id: "db-*", network: "backend" }, { annotation: "tier", value: "edge", network: "dmz" }] });
    expect(selectNetwork(s, "web", "crun", spec())).toMatchObject({ network: "nexcage", by: "default" });
    expect(selectNetwork(s, "db-1", "crun", spec())).toMatchObject({ network: "backend", by: "rule" });
    expect(selectNetwork(s, "x", "lxc", spec({ tier: "edge" }))).toMatchObject({ network: "dmz", by: "rule" });
    expect(selectNetwork(s, "db-1", "runc", spec({ "org.nexcage.network": "other" }))).toMatchObject({ network: "other", by: "annotation" });
    expect(selectNetwork(s, "db-1", "crun", spec({ "org.nexcage.network": "none" }))).toBeUndefined();
  });
  test("a netns named by path (podman, containerd) or the host's netns is left alone", () => {
    const s = settings({ default: "nexcage" });
    expect(selectNetwork(s, "c", "crun", spec({}, { namespaces: [{ type: "network", path: "/var/run/netns/cni-1" }] }))).toBeUndefined();
    expect(selectNetwork(s, "c", "crun", spec({}, { namespaces: [{ type: "mount" }] }))).toBeUndefined();
  });
  test("asking explicitly for what cannot be had is refused, never dropped", () => {
    const s = settings();
    expectError(() => selectNetwork(s, "c", "crun", spec({ "org.nexcage.network": "nexcage" }, { namespaces: [{ type: "network", path: "/proc/1/ns/net" }] })), "invalidSpec", "org.nexcage.network", "names the network namespace");
    expectError(() => selectNetwork(s, "c", "crun", spec({ "org.nexcage.network": "nexcage" }, { namespaces: [] })), "invalidSpec", "host's network namespace");
    expectError(() => selectNetwork(s, "c", "crun", spec({ "org.nexcage.ports": "8080:80" })), "invalidSpec", "org.nexcage.ports", "needs a CNI network");
    expectError(() => selectNetwork(s, "c", "crun", spec({ "org.nexcage.network": "none", "org.nexcage.egress": "deny" })), "invalidSpec", "org.nexcage.egress");
    expectError(() => selectNetwork(s, "c", "crun", spec({ "org.nexcage.network": "../x" })), "invalidSpec", "not a network name");
  });
  test("Proxmox backends keep Proxmox's netN", () => {
    const s = settings({ default: "nexcage" });
    expect(selectNetwork(s, "100", "proxmox-lxc", spec())).toBeUndefined();
    expectError(() => selectNetwork(s, "100", "proxmox-lxc", spec({ "org.nexcage.network": "nexcage" })), "invalidSpec", "org.nexcage.proxmox.net0");
  });
  test("the request carries ports, egress and bandwidth", () => {
    const r = selectNetwork(settings(), "c", "crun", spec({ "org.nexcage.network": "nexcage", "org.nexcage.ports": "8080:80/tcp,5353:53/udp", "org.nexcage.egress": "deny", "org.nexcage.bandwidth.egress": "10M" }));
    expect(r?.ports).toEqual([{ hostPort: 8080, containerPort: 80, protocol: "tcp" }, { hostPort: 5353, containerPort: 53, protocol: "udp" }]);
    expect(r?.egress).toEqual({ mode: "deny" });
    expect(r?.bandwidth).toEqual({ egressRate: 10_000_000, egressBurst: 1_000_000 });
  });
});

describe("annotations", () => {
  test("ports", () => {
    expect(parsePorts("8080:80")).toEqual([{ hostPort: 8080, containerPort: 80, protocol: "tcp" }]);
    expect(parsePorts(" 127.0.0.1:8443:443/tcp ")).toEqual([{ hostIP: "127.0.0.1", hostPort: 8443, containerPort: 443, protocol: "tcp" }]);
    expectError(() => parsePorts("8080:80/sctp"), "invalidSpec", "tcp or udp");
    expectError(() => parsePorts("70000:80"), "invalidSpec", "1-65535");
    expectError(() => parsePorts("80"), "invalidSpec", "HOSTPORT:CONTAINERPORT");
    expectError(() => parsePorts("8080:80,8080:81"), "invalidSpec", "listed twice");
    expectError(() => parsePorts("300.1.1.1:80:80"), "invalidSpec", "IPv4");
    expect(parsePorts("8080:80/udp,8080:80/tcp")).toHaveLength(2);
    expect(parsePortRefs(["8080", "53/udp", "8443:443/tcp"])).toEqual([{ hostPort: 8080, protocol: "tcp" }, { hostPort: 53, protocol: "udp" }, { hostPort: 8443, protocol: "tcp" }]);
    expectError(() => parsePortRefs(["x"]), "usage");
  });
  test("egress", () => {
    expect(parseEgress("")).toEqual({ mode: "allow" });
    expect(parseEgress("allow")).toEqual({ mode: "allow" });
    expect(parseEgress("deny")).toEqual({ mode: "deny" });
    expect(parseEgress("10.0.0.0/8, 192.0.2.7:443/tcp,0.0.0.0/0:53/udp,10.1.0.0/16:8000-8100/tcp,[fd00::/8]:443/tcp,192.0.2.9/udp")).toEqual({
      mode: "list",
      allow: [
        { cidr: "10.0.0.0/8", family: 4 },
        { cidr: "192.0.2.7/32", family: 4, proto: "tcp", ports: [443, 443] },
        { cidr: "0.0.0.0/0", family: 4, proto: "udp", ports: [53, 53] },
        { cidr: "10.1.0.0/16", family: 4, proto: "tcp", ports: [8000, 8100] },
        { cidr: "fd00::/8", family: 6, proto: "tcp", ports: [443, 443] },
        { cidr: "192.0.2.9/32", family: 4, proto: "udp" },
      ],
    });
    expectError(() => parseEgress("10.0.0.0/8:443"), "invalidSpec", "needs a protocol");
    expectError(() => parseEgress("10.0.0.0/33"), "invalidSpec", "not an address");
    expectError(() => parseEgress("example.com"), "invalidSpec", "not an address");
    expectError(() => parseEgress("10.0.0.1:90-80/tcp"), "invalidSpec", "reversed");
  });
  test("rates", () => {
    expect(parseRate("10M", "x")).toBe(10_000_000);
    expect(parseRate("1.5G", "x")).toBe(1_500_000_000);
    expect(parseRate("500k", "x")).toBe(500_000);
    expectError(() => parseRate("10Mbit", "org.nexcage.bandwidth.ingress"), "invalidSpec", "org.nexcage.bandwidth.ingress");
    expectError(() => parseRate("10", "x"), "invalidSpec", "from 1k");
  });
});

describe("CNI protocol pieces", () => {
  const list: ConfList = { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge", bridge: "b" }, { type: "portmap", capabilities: { portMappings: true } }, { type: "bandwidth", capabilities: { bandwidth: true } }] };
  const rc = { portMappings: [{ hostPort: 1, containerPort: 2, protocol: "tcp" as const }] };
  test("each plugin gets the list's name and version, prevResult, and only the capabilities it declares", () => {
    expect(pluginInput(list, list.plugins[0] as never, rc, undefined)).toEqual({ type: "bridge", bridge: "b", cniVersion: "1.0.0", name: "n" });
    const prev = { cniVersion: "1.0.0", ips: [] };
    expect(pluginInput(list, list.plugins[1] as never, rc, prev)).toEqual({ type: "portmap", capabilities: { portMappings: true }, cniVersion: "1.0.0", name: "n", runtimeConfig: rc, prevResult: prev });
    // no bandwidth asked: no runtimeConfig at all
    expect(pluginInput(list, list.plugins[2] as never, rc, prev)).not.toHaveProperty("runtimeConfig");
  });
  test("portmap and bandwidth with nothing to do are not run; other plugins always are", () => {
    const [bridge, portmap, bandwidth] = list.plugins as [never, never, never];
    expect(idle(bridge, {})).toBe(false);
    expect(idle(portmap, {})).toBe(true);
    expect(idle(portmap, { portMappings: [] })).toBe(true);
    expect(idle(portmap, rc)).toBe(false);
    expect(idle(bandwidth, {})).toBe(true);
    expect(idle(bandwidth, { bandwidth: { egressRate: 1e6, egressBurst: 1e5 } })).toBe(false);
    // static limits in the conflist count too; a runtime value without the capability does not
    expect(idle({ type: "bandwidth", ingressRate: 1e6, ingressBurst: 1e5 } as never, {})).toBe(false);
    expect(idle({ type: "portmap" } as never, rc)).toBe(true);
  });
  test("portmap's per-container chain name, as the plugin derives it (CNI-DN- + sha512(name+id), 28 chars)", () => {
    // the name Debian's portmap gave container "again" on network "nexcage" in an e2e run
    expect(portmapChain("nexcage", "again")).toBe("CNI-DN-1c039e9b8a9f7d68cba70");
    expect(portmapChain("nexcage", "x".repeat(1000))).toHaveLength(28);
  });
  test("reading a bridge result: host veth, addresses, MAC", () => {
    const r = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "nexcage0", mac: "aa" }, { name: "veth1234", mac: "bb" }, { name: "eth0", mac: "cc", sandbox: "/run/x" }],
      ips: [{ address: "10.87.0.5/16", gateway: "10.87.0.1", interface: 2 }],
    };
    expect(describeResult(r, "eth0")).toEqual({ hostIf: "veth1234", ips: ["10.87.0.5"], mac: "cc" });
  });
  test("/proc/net/dev", () => {
    const file = `${import.meta.dir}/../.cache/netdev-${process.pid}`;
    require("node:fs").mkdirSync(`${import.meta.dir}/../.cache`, { recursive: true });
    require("node:fs").writeFileSync(file, "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n  eth0: 100 2 0 0 0 0 0 0 300 4 0 1 0 0 0 0\n");
    expect(readNetDev(file).get("eth0")?.slice(0, 12)).toEqual([100, 2, 0, 0, 0, 0, 0, 0, 300, 4, 0, 1]);
    require("node:fs").rmSync(file);
  });
});

describe("egress nft script", () => {
  const t = { key: chainKey("web"), ips: ["10.87.0.5"], hostIf: "veth1" };
  test("allow all installs nothing", () => expect(egressScript(t, { mode: "allow" })).toBe(""));
  test("deny all: replies pass, TCP gets a reset, the rest ICMP admin-prohibited; anti-spoofing on the bridge port", () => {
    const s = egressScript(t, { mode: "deny" });
    expect(s).toContain(`add rule inet nexcage eg-${t.key} ct state established,related accept`);
    expect(s).toContain("meta l4proto tcp reject with tcp reset");
    expect(s).toContain("reject with icmpx type admin-prohibited");
    expect(s).toContain(`add element inet nexcage egress4 { 10.87.0.5 : jump eg-${t.key} }`);
    expect(s).toContain(`add element bridge nexcage ports { "veth1" : jump sp-${t.key} }`);
    expect(s).toContain(`add rule bridge nexcage sp-${t.key} ip saddr 10.87.0.5 return`);
    expect(s.indexOf("reject with tcp reset")).toBeGreaterThan(s.indexOf("established,related"));
  });
  test("allow-list rules come before the rejects", () => {
    const s = egressScript(t, parseEgress("10.0.0.0/8,192.0.2.7:443/tcp,0.0.0.0/0:53/udp,10.2.0.0/16:1-9/tcp"));
    for (const r of ["ip daddr 10.0.0.0/8 accept", "ip daddr 192.0.2.7/32 tcp dport 443 accept", "ip daddr 0.0.0.0/0 udp dport 53 accept", "ip daddr 10.2.0.0/16 tcp dport 1-9 accept"]) {
      expect(s).toContain(r);
      expect(s.indexOf(r)).toBeLessThan(s.indexOf("reject with tcp reset"));
    }
  });
  test("chain keys are short and stable", () => {
    expect(chainKey("x".repeat(1024))).toHaveLength(16);
    expect(chainKey("a")).toBe(chainKey("a"));
    expect(chainKey("a")).not.toBe(chainKey("b"));
  });
});
