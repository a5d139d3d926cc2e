// Egress policy with nftables, in the network namespace that holds the bridge (the host's, normally).
// Two tables of nexcage's own, never anyone else's:
//   bridge nexcage: a map from the container's host-side veth to its chain `sp-<key>`, which lets through
//     only frames carrying the container's own addresses (a container cannot spoof its way past the policy);
//   inet nexcage: maps from a container address to its chain `eg-<key>` (forward and input hooks, so traffic
//     to other hosts, to other containers on the bridge and to the host itself is covered): replies to
//     established connections pass, the allow-list passes, everything else is rejected — TCP with a reset,
//     the rest with ICMP administratively-prohibited — so a blocked connect fails at once instead of hanging.
// Bridged traffic between two containers reaches the inet hooks only through br_netfilter
// (net.bridge.bridge-nf-call-iptables=1); without it a policy is refused rather than half enforced.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import type { EgressPolicy, EgressRule } from "./select.ts";

export const NFT_TABLE = "nexcage";

/** a short, stable chain key for a container id (ids may be 1024 characters; nft names stop at 256) */
export function chainKey(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 16);
}

export interface EgressTarget {
  key: string;
  /** the container's addresses, without prefix */
  ips: string[];
  /** the host side of its veth */
  hostIf: string;
}

const BASE = `table inet ${NFT_TABLE} {
  map egress4 { type ipv4_addr : verdict; }
  map egress6 { type ipv6_addr : verdict; }
  chain forward { type filter hook forward priority -5; policy accept; ip saddr vmap @egress4; ip6 saddr vmap @egress6; }
  chain input { type filter hook input priority -5; policy accept; ip saddr vmap @egress4; ip6 saddr vmap @egress6; }
}
table bridge ${NFT_TABLE} {
  map ports { type ifname : verdict; }
  chain prerouting { type filter hook prerouting priority -200; policy accept; iifname vmap @ports; }
}
`;

function ruleText(r: EgressRule): string {
  const dst = `${r.family === 4 ? "ip" : "ip6"} daddr ${r.cidr}`;
  if (!r.proto) return `${dst} accept`;
  if (!r.ports) return `${dst} meta l4proto ${r.proto} accept`;
  const [lo, hi] = r.ports;
  return `${dst} ${r.proto} dport ${lo === hi ? lo : `${lo}-${hi}`} accept`;
}

/** The nft script that installs a container's chains (the base tables must exist). Pure, unit-tested. */
export function egressScript(t: EgressTarget, policy: EgressPolicy): string {
  if (policy.mode === "allow") return "";
  const eg = `eg-${t.key}`;
  const sp = `sp-${t.key}`;
  const v4 = t.ips.filter((ip) => !ip.includes(":"));
  const v6 = t.ips.filter((ip) => ip.includes(":"));
  const lines = [
    `add chain inet ${NFT_TABLE} ${eg}`,
    `add rule inet ${NFT_TABLE} ${eg} ct state established,related accept`,
    ...(policy.mode === "list" ? policy.allow.map((r) => `add rule inet ${NFT_TABLE} ${eg} ${ruleText(r)}`) : []),
    `add rule inet ${NFT_TABLE} ${eg} meta l4proto tcp reject with tcp reset`,
    `add rule inet ${NFT_TABLE} ${eg} reject with icmpx type admin-prohibited`,
    `add chain bridge ${NFT_TABLE} ${sp}`,
    `add rule bridge ${NFT_TABLE} ${sp} ether type arp arp saddr ip { 0.0.0.0${v4.map((ip) => `, ${ip}`).join("")} } return`,
    ...v4.map((ip) => `add rule bridge ${NFT_TABLE} ${sp} ip saddr ${ip} return`),
    // IPv6 neighbour discovery starts from link-local and unspecified addresses
    ...(v6.length ? [`add rule bridge ${NFT_TABLE} ${sp} ip6 saddr { ::, fe80::/10, ${v6.join(", ")} } return`] : []),
    `add rule bridge ${NFT_TABLE} ${sp} drop`,
    ...v4.map((ip) => `add element inet ${NFT_TABLE} egress4 { ${ip} : jump ${eg} }`),
    ...v6.map((ip) => `add element inet ${NFT_TABLE} egress6 { ${ip} : jump ${eg} }`),
    `add element bridge ${NFT_TABLE} ports { "${t.hostIf}" : jump ${sp} }`,
  ];
  return `${lines.join("\n")}\n`;
}

function nft(script: string, args: string[] = ["-f", "-"]): string {
  const r = Bun.spawnSync(["nft", ...args], { stdin: Buffer.from(script), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new NexcageError("failure", `nft: ${r.stderr.toString().trim().split("\n")[0] || `exit status ${r.exitCode}`}`);
  return r.stdout.toString();
}

/** br_netfilter hands bridged IPv4 frames to the inet hooks in this network namespace */
export function bridgedTrafficFiltered(): boolean {
  try {
    return readFileSync("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

interface NftObjects {
  chains: Set<string>;
  elements: Map<string, Set<string>>;
}

/** what of nexcage's tables exists now (family → chains and map keys) */
function listObjects(): Record<"inet" | "bridge", NftObjects> | undefined {
  const r = Bun.spawnSync(["nft", "-j", "list", "tables"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return undefined;
  const out = { inet: { chains: new Set<string>(), elements: new Map() }, bridge: { chains: new Set<string>(), elements: new Map() } } as Record<"inet" | "bridge", NftObjects>;
  const tables = (JSON.parse(r.stdout.toString()).nftables as { table?: { family: string; name: string } }[]).filter((o) => o.table?.name === NFT_TABLE);
  if (!tables.length) return out;
  for (const fam of ["inet", "bridge"] as const) {
    if (!tables.some((t) => t.table?.family === fam)) continue;
    const j = Bun.spawnSync(["nft", "-j", "list", "table", fam, NFT_TABLE], { stdout: "pipe", stderr: "pipe" });
    if (j.exitCode !== 0) continue;
    for (const o of JSON.parse(j.stdout.toString()).nftables as Record<string, any>[]) {
      if (o.chain) out[fam].chains.add(o.chain.name);
      if (o.map) {
        const keys = new Set<string>();
        for (const e of o.map.elem ?? []) keys.add(String(Array.isArray(e) ? e[0] : e));
        out[fam].elements.set(o.map.name, keys);
      }
    }
  }
  return out;
}

export function applyEgress(t: EgressTarget, policy: EgressPolicy): void {
  const script = egressScript(t, policy);
  if (!script) return;
  const have = listObjects();
  nft((have?.inet.chains.has("forward") && have.bridge.chains.has("prerouting") ? "" : BASE) + script);
}

/**
 * Idempotent: removes whatever of the container's chains and map entries exists, and the tables once no
 * container uses them. Driven by what nft lists, so it works after a crash at any step of applyEgress.
 */
export function removeEgress(key: string): void {
  const have = listObjects();
  if (!have) return;
  const eg = `eg-${key}`;
  const sp = `sp-${key}`;
  const lines: string[] = [];
  // map entries pointing at our chains: found by listing the verdicts
  for (const [fam, map, chain] of [["inet", "egress4", eg], ["inet", "egress6", eg], ["bridge", "ports", sp]] as const) {
    for (const k of mapKeysJumpingTo(fam, map, chain)) lines.push(`delete element ${fam} ${NFT_TABLE} ${map} { ${fam === "bridge" ? `"${k}"` : k} }`);
  }
  if (have.inet.chains.has(eg)) lines.push(`flush chain inet ${NFT_TABLE} ${eg}`, `delete chain inet ${NFT_TABLE} ${eg}`);
  if (have.bridge.chains.has(sp)) lines.push(`flush chain bridge ${NFT_TABLE} ${sp}`, `delete chain bridge ${NFT_TABLE} ${sp}`);
  if (lines.length) nft(`${lines.join("\n")}\n`);
  // the last container gone: the tables go too
  const after = listObjects();
  for (const fam of ["inet", "bridge"] as const) {
    const o = after?.[fam];
    if (!o || !o.chains.size) continue;
    const own = [...o.chains].some((c) => c.startsWith("eg-") || c.startsWith("sp-"));
    const entries = [...o.elements.values()].some((s) => s.size);
    if (!own && !entries) nft("", ["delete", "table", fam, NFT_TABLE]);
  }
}

function mapKeysJumpingTo(fam: "inet" | "bridge", map: string, chain: string): string[] {
  const r = Bun.spawnSync(["nft", "-j", "list", "map", fam, NFT_TABLE, map], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return [];
  const keys: string[] = [];
  for (const o of JSON.parse(r.stdout.toString()).nftables as Record<string, any>[]) {
    for (const e of o.map?.elem ?? []) {
      if (Array.isArray(e) && e[1]?.jump?.target === chain) keys.push(String(e[0]));
    }
  }
  return keys;
}

/** per-container chains present now, for leak checks in `health` */
export function egressChains(): string[] {
  const have = listObjects();
  return have ? [...have.inet.chains, ...have.bridge.chains].filter((c) => c.startsWith("eg-") || c.startsWith("sp-")) : [];
}
