// A CNI client (the container network interface protocol, spec 1.0): runs plugin binaries with the CNI_*
// environment and one plugin's config on stdin, chains ADD results through `prevResult`, hands each plugin
// only the runtime capabilities it declares, runs DEL in reverse order and CHECK against the cached result.
// The plugins (bridge, host-local, portmap, firewall, bandwidth, tuning, loopback ...) do the host work;
// nothing here touches netlink or the firewall itself.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as v from "valibot";
import { NexcageError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { parseWith } from "../core/validate.ts";

const PluginSchema = v.looseObject({ type: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]+$/, "must be a plugin binary name")), capabilities: v.optional(v.record(v.string(), v.boolean())) });
export const ConfListSchema = v.looseObject({
  cniVersion: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+$/, "must be a version such as 1.0.0")),
  name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a network name (letters, digits, _ . -)")),
  disableCheck: v.optional(v.boolean()),
  plugins: v.pipe(v.array(PluginSchema), v.minLength(1, "must list at least one plugin")),
});
export type ConfList = v.InferOutput<typeof ConfListSchema>;
export type PluginConf = ConfList["plugins"][number];

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}
export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}
/** the parts of a CNI 1.0 result nexcage reads; the whole object is kept and handed back as prevResult */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
  [k: string]: unknown;
}

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
  hostIP?: string;
}
/** the bandwidth plugin's runtime config: rates in bits per second, bursts in bits */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}
export interface RuntimeConfig {
  portMappings?: PortMapping[];
  bandwidth?: Bandwidth;
}

export interface CniCall {
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_PATH: directories searched for plugin binaries */
  path: string[];
  runtimeConfig: RuntimeConfig;
  timeoutMs: number;
}

type Command = "ADD" | "DEL" | "CHECK";

/**
 * portmap and bandwidth with nothing to do (no mappings, no limits, in the runtime config or their own) pass
 * the previous result through on ADD and return at once on DEL and CHECK: not running them saves two plugin
 * starts per create and per delete. `nexcage port add` runs portmap itself when mappings appear later.
 */
export function idle(plugin: PluginConf, rc: RuntimeConfig): boolean {
  const p = plugin as Record<string, unknown>;
  if (plugin.type === "portmap") return !(plugin.capabilities?.portMappings && rc.portMappings?.length);
  if (plugin.type === "bandwidth") return !(p.ingressRate || p.egressRate || (plugin.capabilities?.bandwidth && (rc.bandwidth?.ingressRate || rc.bandwidth?.egressRate)));
  return false;
}

/** A plugin's full path, or a clear error naming the directories searched. */
export function findPlugin(type: string, dirs: string[]): string {
  for (const d of dirs) if (existsSync(`${d}/${type}`)) return `${d}/${type}`;
  throw new NexcageError("unsupported", `CNI plugin ${JSON.stringify(type)} not found in ${dirs.join(":")} (apt-get install containernetworking-plugins)`);
}

/** The stdin of one plugin call: the plugin's own keys plus the list's name and version, prevResult and
 *  the runtimeConfig entries of the capabilities it declares (as libcni builds it). */
export function pluginInput(list: ConfList, plugin: PluginConf, rc: RuntimeConfig, prevResult: CniResult | undefined): Record<string, unknown> {
  const input: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    const value = (rc as Record<string, unknown>)[cap];
    if (on && value !== undefined) runtimeConfig[cap] = value;
  }
  if (Object.keys(runtimeConfig).length) input.runtimeConfig = runtimeConfig;
  if (prevResult) input.prevResult = prevResult;
  return input;
}

export async function invoke(command: Command, list: ConfList, plugin: PluginConf, call: CniCall, prevResult: CniResult | undefined): Promise<CniResult | undefined> {
  const bin = findPlugin(plugin.type, call.path);
  const stdin = JSON.stringify(pluginInput(list, plugin, call.runtimeConfig, prevResult));
  const proc = Bun.spawn([bin], {
    stdin: Buffer.from(stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_IFNAME: call.ifname,
      CNI_PATH: call.path.join(":"),
    },
  });
  const t0 = performance.now();
  const timer = setTimeout(() => proc.kill("SIGKILL"), call.timeoutMs);
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  log().debug(`CNI ${command} ${list.name}/${plugin.type} ${call.containerId}: exit ${code} in ${(performance.now() - t0).toFixed(1)} ms`);
  if (proc.signalCode === "SIGKILL") throw new NexcageError("timeout", `CNI ${command} ${list.name}/${plugin.type}: no answer within ${call.timeoutMs / 1000} s`);
  if (code !== 0) throw new NexcageError("failure", `CNI ${command} ${list.name}/${plugin.type}: ${pluginError(out, err, code)}`);
  if (command !== "ADD") return undefined;
  try {
    return JSON.parse(out) as CniResult;
  } catch {
    throw new NexcageError("failure", `CNI ADD ${list.name}/${plugin.type}: the plugin printed no JSON result: ${out.slice(0, 200)}`);
  }
}

/** CNI's error object is {code, msg, details} on stdout; older plugins print to stderr only */
function pluginError(out: string, err: string, code: number): string {
  try {
    const e = JSON.parse(out) as { code?: number; msg?: string; details?: string };
    if (e.msg) return `${e.msg}${e.details ? ` (${e.details})` : ""}`;
  } catch {}
  return (err.trim() || out.trim() || `exit status ${code}`).split("\n").slice(-3).join("; ");
}

/**
 * ADD through the whole list; each plugin gets the previous one's result. On a failure the plugins already
 * run are deleted again (newest first) so a failed ADD leaves nothing, then the error is thrown.
 * `after(i)` runs once plugin i succeeded (crash-test points and journaling hang off it).
 */
export async function addList(list: ConfList, call: CniCall, after: (i: number, result: CniResult) => void = () => {}, prevResult?: CniResult): Promise<CniResult> {
  let result = prevResult;
  const done: PluginConf[] = [];
  try {
    for (const [i, plugin] of list.plugins.entries()) {
      if (idle(plugin, call.runtimeConfig)) continue;
      const r = await invoke("ADD", list, plugin, call, result);
      done.push(plugin);
      if (r) result = r;
      after(i, result as CniResult);
    }
  } catch (e) {
    await delList({ ...list, plugins: done }, call, result).catch(() => {});
    throw e;
  }
  if (!result) throw new NexcageError("failure", `CNI ADD ${list.name}: no plugin returned a result`);
  return result;
}

/** DEL in reverse order. Every plugin is called even when one fails (DEL must release what it can);
 *  the first error is thrown afterwards. */
export async function delList(list: ConfList, call: CniCall, cached: CniResult | undefined): Promise<void> {
  let first: unknown;
  for (const plugin of [...list.plugins].reverse()) {
    if (idle(plugin, call.runtimeConfig)) continue;
    try {
      findPlugin(plugin.type, call.path);
    } catch (e) {
      // a plugin that is not there cannot have made anything (its ADD failed) or cannot remove it anyway
      log().warn(`CNI DEL ${list.name}/${plugin.type} skipped: ${(e as Error).message}`);
      continue;
    }
    try {
      await invoke("DEL", list, plugin, call, cached);
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/**
 * CHECK every plugin against the cached result. Two CHECKs of Debian 12's plugins (1.1.1) fail on a healthy
 * attachment: bandwidth's panics when no limit is set (idle: not run) and portmap's looks for the IPv4 DNAT
 * chain in ip6tables too (fixed upstream later), so nexcage checks portmap's chain itself.
 */
/**
 * After DEL: the bridge plugin removes its masquerade rule and chain (CNI-<sha512(name+id)>) only for the
 * addresses it still finds on the container's interface, so an interface whose address was changed or
 * removed inside the container leaks them. This removes what is left, found by the plugin's own comment
 * (`name: "<network>" id: "<container>"`) and chain name; nothing else is touched.
 */
export function sweepBridgeMasq(list: ConfList, containerId: string, cached: CniResult | undefined): void {
  if (!list.plugins.some((p) => p.type === "bridge" && (p as { ipMasq?: boolean }).ipMasq)) return;
  // ip6tables only where the container had an IPv6 address (each look costs a process start)
  const tools = (cached?.ips ?? []).some((i) => i.address.includes(":")) ? ["iptables", "ip6tables"] : ["iptables"];
  const chain = `CNI-${createHash("sha512").update(list.name + containerId).digest("hex")}`.slice(0, 28);
  const comment = `/* name: "${list.name}" id: "${containerId}" */`;
  for (const tool of tools) {
    // the normal case: DEL removed the chain, one call tells
    if (Bun.spawnSync([tool, "-w", "-t", "nat", "-S", chain], { stdout: "ignore", stderr: "ignore" }).exitCode !== 0) continue;
    const listing = Bun.spawnSync([tool, "-w", "-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers"], { stdout: "pipe", stderr: "ignore" });
    if (listing.exitCode !== 0) continue;
    const nums = listing.stdout.toString().split("\n").filter((l) => l.includes(comment) && l.includes(chain)).map((l) => Number(l.split(/\s+/)[0])).filter((n) => n > 0);
    for (const n of nums.sort((a, b) => b - a)) Bun.spawnSync([tool, "-w", "-t", "nat", "-D", "POSTROUTING", String(n)], { stdout: "ignore", stderr: "ignore" });
    if (Bun.spawnSync([tool, "-w", "-t", "nat", "-F", chain], { stdout: "ignore", stderr: "ignore" }).exitCode === 0) {
      Bun.spawnSync([tool, "-w", "-t", "nat", "-X", chain], { stdout: "ignore", stderr: "ignore" });
    }
  }
}

export async function checkList(list: ConfList, call: CniCall, cached: CniResult): Promise<void> {
  for (const plugin of list.plugins) {
    if (idle(plugin, call.runtimeConfig)) continue;
    if (plugin.type === "portmap") {
      checkPortmap(list, plugin, call, cached);
      continue;
    }
    await invoke("CHECK", list, plugin, call, cached);
  }
}

/** portmap's per-container DNAT chain (CNI-DN-<sha512(name+id)>, 28 characters) holds every mapping */
export function portmapChain(network: string, containerId: string): string {
  return `CNI-DN-${createHash("sha512").update(network + containerId).digest("hex")}`.slice(0, 28);
}

function checkPortmap(list: ConfList, plugin: PluginConf, call: CniCall, cached: CniResult): void {
  const maps = plugin.capabilities?.portMappings ? (call.runtimeConfig.portMappings ?? []) : [];
  if (!maps.length) return;
  const chain = portmapChain(list.name, call.containerId);
  const r = Bun.spawnSync(["iptables", "-w", "-t", "nat", "-S", chain], { stdout: "pipe", stderr: "pipe" });
  const fail = (why: string) => new NexcageError("failure", `CNI CHECK ${list.name}/portmap: ${why}`);
  if (r.exitCode !== 0) throw fail(`chain ${chain} not found in iptables table nat`);
  const rules = r.stdout.toString();
  const ip = (cached.ips ?? []).map((i) => i.address.split("/")[0]).find((a) => a && !a.includes(":"));
  for (const m of maps) {
    const re = new RegExp(`-p ${m.protocol} .*--dport ${m.hostPort} .*--to-destination ${ip?.replaceAll(".", "\\.")}:${m.containerPort}\\b`);
    if (!re.test(rules)) throw fail(`no DNAT rule for host port ${m.hostPort}/${m.protocol} to ${ip}:${m.containerPort} in ${chain}`);
  }
}

export function parseConfList(data: unknown, source: string): ConfList {
  return parseWith(ConfListSchema, data, `invalid CNI network ${source}`);
}
