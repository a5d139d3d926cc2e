// Which network a container joins and what it asks of it, from its config.json and nexcage's config: pure
// functions (no I/O), every refusal unit-tested. A container that has no network namespace of its own, or
// whose config names one by path (podman, containerd and CRI-O bring their own), is left alone.
import type { BackendName } from "../backends/types.ts";
import type { NetworkSettings } from "../core/config.ts";
import { NexcageError } from "../core/errors.ts";
import type { Spec } from "../oci/spec.ts";
import { compilePattern } from "../router/router.ts";
import type { Bandwidth, PortMapping } from "./cni.ts";

export const NETWORK_ANNOTATION = "org.nexcage.network";
export const PORTS_ANNOTATION = "org.nexcage.ports";
export const EGRESS_ANNOTATION = "org.nexcage.egress";
export const INGRESS_RATE_ANNOTATION = "org.nexcage.bandwidth.ingress";
export const EGRESS_RATE_ANNOTATION = "org.nexcage.bandwidth.egress";
export const BUILTIN_NETWORK = "nexcage";

/** allow all (default), deny all, or only what the list names (plus replies to connections made to it) */
export type EgressPolicy = { mode: "allow" } | { mode: "deny" } | { mode: "list"; allow: EgressRule[] };
export interface EgressRule {
  /** 10.0.0.0/8, 192.0.2.1/32, fd00::/8 */
  cidr: string;
  family: 4 | 6;
  proto?: "tcp" | "udp";
  ports?: [number, number];
}

export interface NetworkRequest {
  network: string;
  /** how it was chosen, for messages and `nexcage route`-like explanations */
  by: "annotation" | "rule" | "default";
  ports: PortMapping[];
  egress: EgressPolicy;
  bandwidth?: Bandwidth;
}

const bad = (what: string, msg: string) => new NexcageError("invalidSpec", `invalid config.json: annotations.${what}: ${msg}`);

/**
 * The network request of a container, or undefined when it gets none. Throws when the container asks for
 * something it cannot have (ports without a network, CNI on a Proxmox backend, a network for a container
 * that shares the host's network namespace).
 */
export function selectNetwork(settings: NetworkSettings, id: string, backend: BackendName, spec: Pick<Spec, "annotations" | "linux">): NetworkRequest | undefined {
  const ann = spec.annotations ?? {};
  const explicit = ann[NETWORK_ANNOTATION];
  let network: string;
  let by: NetworkRequest["by"];
  if (explicit !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(explicit)) throw bad(NETWORK_ANNOTATION, `${JSON.stringify(explicit)} is not a network name (nexcage, none or a conflist's name)`);
    [network, by] = [explicit, "annotation"];
  } else {
    const rule = settings.routing.find((r) => {
      if (r.id !== undefined && !compilePattern(r.id).test(id)) return false;
      if (r.annotation !== undefined) {
        const val = ann[r.annotation];
        if (val === undefined || (r.value !== undefined && !compilePattern(r.value).test(val))) return false;
      }
      return true;
    });
    [network, by] = rule ? [rule.network, "rule"] : [settings.default, "default"];
  }
  const asks = [PORTS_ANNOTATION, EGRESS_ANNOTATION, INGRESS_RATE_ANNOTATION, EGRESS_RATE_ANNOTATION].filter((k) => ann[k] !== undefined && ann[k] !== "");
  const none = (why: string): undefined => {
    // what only a network can give is refused, never dropped
    if (asks.length) throw bad(asks[0] as string, `needs a CNI network, but ${why}`);
    return undefined;
  };
  if (network === "none") return none(`${NETWORK_ANNOTATION} is none`);
  if (backend === "proxmox-lxc" || backend === "proxmox-vm") {
    if (by === "annotation") throw bad(NETWORK_ANNOTATION, `the ${backend} backend uses Proxmox's own network devices: set org.nexcage.proxmox.net0 (e.g. name=eth0,bridge=vmbr0,ip=dhcp) instead`);
    return none(`the ${backend} backend uses Proxmox's own network devices (org.nexcage.proxmox.net0)`);
  }
  const netns = (spec.linux?.namespaces ?? []).find((n) => n.type === "network");
  if (!netns || netns.path) {
    const why = netns ? `linux.namespaces names the network namespace ${netns.path} (its owner configures it)` : "the container shares the host's network namespace (linux.namespaces has no network entry)";
    if (by === "annotation") throw bad(NETWORK_ANNOTATION, `cannot join ${network}: ${why}`);
    return none(why);
  }
  const bandwidth = parseBandwidth(ann);
  return {
    network,
    by,
    ports: parsePorts(ann[PORTS_ANNOTATION] ?? ""),
    egress: parseEgress(ann[EGRESS_ANNOTATION] ?? ""),
    ...(bandwidth ? { bandwidth } : {}),
  };
}

type Fail = (where: string, msg: string) => NexcageError;
const port = (s: string, what: string, where: string, fail: Fail = bad): number => {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw fail(where, `${what} ${JSON.stringify(s)} must be a port number 1-65535`);
  return n;
};

/** for ports given on the command line (`nexcage port add`): usage errors, not config errors */
export const usageFail: Fail = (_where, msg) => new NexcageError("usage", msg);

/** `8080:80/tcp,5353:53/udp,127.0.0.1:8443:443` (protocol tcp when absent) */
export function parsePorts(text: string, where = PORTS_ANNOTATION, fail: Fail = bad): PortMapping[] {
  const out: PortMapping[] = [];
  for (const raw of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [spec, proto = "tcp", ...more] = raw.split("/");
    if (more.length || (proto !== "tcp" && proto !== "udp")) throw fail(where, `${JSON.stringify(raw)}: protocol must be tcp or udp`);
    const parts = (spec ?? "").split(":");
    if (parts.length < 2 || parts.length > 3) throw fail(where, `${JSON.stringify(raw)}: want HOSTPORT:CONTAINERPORT[/tcp|udp] or HOSTIP:HOSTPORT:CONTAINERPORT`);
    const hostIP = parts.length === 3 ? parts[0] : undefined;
    if (hostIP !== undefined && !isIPv4(hostIP)) throw fail(where, `${JSON.stringify(raw)}: host address ${JSON.stringify(hostIP)} must be an IPv4 address`);
    const m: PortMapping = { hostPort: port(parts.at(-2) as string, "host port", where, fail), containerPort: port(parts.at(-1) as string, "container port", where, fail), protocol: proto };
    if (hostIP) m.hostIP = hostIP;
    if (out.some((o) => o.hostPort === m.hostPort && o.protocol === m.protocol)) throw fail(where, `host port ${m.hostPort}/${m.protocol} is listed twice`);
    out.push(m);
  }
  return out;
}

export function formatPort(m: PortMapping): string {
  return `${m.hostIP ? `${m.hostIP}:` : ""}${m.hostPort}:${m.containerPort}/${m.protocol}`;
}

function isIPv4(s: string): boolean {
  const p = s.split(".");
  return p.length === 4 && p.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255);
}

function isIPv6(s: string): boolean {
  return /^[0-9a-fA-F:]+$/.test(s) && s.includes(":") && (s.match(/::/g) ?? []).length <= 1;
}

/**
 * `allow` | `deny` | a list of destinations: `10.0.0.0/8`, `192.0.2.7:443/tcp`, `0.0.0.0/0:53/udp`,
 * `10.1.0.0/16:8000-8100/tcp`, `[fd00::/8]:443/tcp`. A port needs a protocol.
 */
export function parseEgress(text: string): EgressPolicy {
  const t = text.trim();
  if (t === "" || t === "allow") return { mode: "allow" };
  if (t === "deny") return { mode: "deny" };
  const allow: EgressRule[] = [];
  for (const raw of t.split(",").map((s) => s.trim()).filter(Boolean)) {
    // split "CIDR[:PORTS][/PROTO]": the CIDR keeps its own /prefix, so take the protocol off the end first
    const protoMatch = /\/(tcp|udp)$/.exec(raw);
    const proto = protoMatch?.[1] as "tcp" | "udp" | undefined;
    const body = proto ? raw.slice(0, -proto.length - 1) : raw;
    const mm = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+)(?:-(\d+))?)?$/.exec(body);
    if (!mm) throw bad(EGRESS_ANNOTATION, `${JSON.stringify(raw)}: want allow, deny, or CIDR[:PORT[-PORT]][/tcp|udp] entries separated by commas`);
    const cidr = (mm[1] ?? mm[2]) as string;
    const [addr, prefix, ...rest] = cidr.split("/");
    const family = isIPv4(addr ?? "") ? 4 : isIPv6(addr ?? "") ? 6 : 0;
    const max = family === 4 ? 32 : 128;
    if (!family || rest.length || (prefix !== undefined && (!/^\d+$/.test(prefix) || Number(prefix) > max))) throw bad(EGRESS_ANNOTATION, `${JSON.stringify(raw)}: ${JSON.stringify(cidr)} is not an address or CIDR (IPv6 in brackets: [fd00::/8]:443/tcp)`);
    const rule: EgressRule = { cidr: prefix === undefined ? `${addr}/${max}` : cidr, family: family as 4 | 6 };
    if (mm[3] !== undefined) {
      if (!proto) throw bad(EGRESS_ANNOTATION, `${JSON.stringify(raw)}: a port needs a protocol (/tcp or /udp)`);
      const lo = port(mm[3], "port", EGRESS_ANNOTATION);
      const hi = mm[4] !== undefined ? port(mm[4], "port", EGRESS_ANNOTATION) : lo;
      if (hi < lo) throw bad(EGRESS_ANNOTATION, `${JSON.stringify(raw)}: port range ${lo}-${hi} is reversed`);
      rule.ports = [lo, hi];
    }
    if (proto) rule.proto = proto;
    allow.push(rule);
  }
  return { mode: "list", allow };
}

/** bits per second: `10M`, `1.5G`, `500k`, `1000000` (SI, like Kubernetes' bandwidth annotations) */
export function parseRate(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKMGT]?)$/.exec(text.trim());
  const mult: Record<string, number> = { "": 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  const n = m ? Math.round(Number(m[1]) * (mult[m[2] as string] as number)) : 0;
  if (!m || n < 1000 || n > 4e12) throw bad(where, `${JSON.stringify(text)} must be a rate in bits per second from 1k to 4T, e.g. 10M`);
  return n;
}

function parseBandwidth(ann: Record<string, string>): Bandwidth | undefined {
  const bw: Bandwidth = {};
  // the token bucket holds 100 ms at the rate, never less than 64 KiB (a burst below one MTU stalls tbf)
  const burst = (rate: number) => Math.max(Math.round(rate / 10), 64 * 1024 * 8);
  const i = ann[INGRESS_RATE_ANNOTATION];
  const e = ann[EGRESS_RATE_ANNOTATION];
  if (i) {
    bw.ingressRate = parseRate(i, INGRESS_RATE_ANNOTATION);
    bw.ingressBurst = burst(bw.ingressRate);
  }
  if (e) {
    bw.egressRate = parseRate(e, EGRESS_RATE_ANNOTATION);
    bw.egressBurst = burst(bw.egressRate);
  }
  return Object.keys(bw).length ? bw : undefined;
}

/** host ports named for removal: `8080`, `8080/udp`, or a whole mapping `8080:80/tcp` (its host port) */
export function parsePortRefs(items: string[]): { hostPort: number; protocol: "tcp" | "udp" }[] {
  return items.map((raw) => {
    const [spec = "", proto = "tcp", ...more] = raw.split("/");
    if (more.length || (proto !== "tcp" && proto !== "udp")) throw new NexcageError("usage", `${JSON.stringify(raw)}: protocol must be tcp or udp`);
    const parts = spec.split(":");
    const host = parts.length === 1 ? parts[0] : parts.at(-2);
    const n = Number(host);
    if (!/^\d+$/.test(host ?? "") || n < 1 || n > 65535) throw new NexcageError("usage", `${JSON.stringify(raw)}: want HOSTPORT[/tcp|udp]`);
    return { hostPort: n, protocol: proto };
  });
}
