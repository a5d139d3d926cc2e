// nexcage's own configuration (/etc/nexcage/config.json, or --config / NEXCAGE_CONFIG), valibot-validated.
// Also reads the config shape of the earlier NexCage (Zig) releases so existing installs keep working.
import { existsSync } from "node:fs";
import * as v from "valibot";
import { BACKEND_NAMES, type BackendName } from "../backends/types.ts";
import { NexcageError } from "./errors.ts";
import { parseWith, readJsonFile } from "./validate.ts";
import { compilePattern } from "../router/router.ts";

export const DEFAULT_CONFIG_PATH = "/etc/nexcage/config.json";
export const BACKEND_ANNOTATION = "org.nexcage.backend";

const backendName = v.picklist(BACKEND_NAMES, `must be one of ${BACKEND_NAMES.join(", ")}`);

/** what a rule matches on: backend routing and network routing share it */
const ruleMatch = {
  name: v.optional(v.string()),
  /** glob (`web-*`) or, when it starts with ^ or ends with $, a regular expression */
  id: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** annotation key that must be present in config.json */
  annotation: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** pattern for the annotation's value (same glob/regex rule); any value when absent */
  value: v.optional(v.string()),
};
/** a rule: what it matches on plus what it selects (`backend`, `network`); it must match on something */
function ruleSchema<E extends v.ObjectEntries>(selects: E) {
  const has = (r: unknown, k: string) => (r as Record<string, unknown>)[k] !== undefined;
  return v.pipe(
    v.strictObject({ ...ruleMatch, ...selects }),
    v.check((r) => has(r, "id") || has(r, "annotation"), "a rule needs `id` or `annotation` to match on"),
    v.check((r) => !has(r, "value") || has(r, "annotation"), "`value` needs `annotation`"),
  );
}

const RuleSchema = ruleSchema({ backend: backendName });

const absPath = v.pipe(v.string(), v.startsWith("/", "must be an absolute path"));

const ProxmoxSchema = v.strictObject({
  /** where pct keeps the LXC configs it generates (liblxc's lxcpath for the hot path) */
  lxcpath: v.optional(absPath, "/var/lib/lxc"),
  /** the cluster filesystem: <etcPve>/lxc/<vmid>.conf */
  etcPve: v.optional(absPath, "/etc/pve"),
  /** storage for container root volumes, and for templates nexcage packs from bundles */
  storage: v.optional(v.string(), "local"),
  templateStorage: v.optional(v.string(), "local"),
  /** root volume size in GiB when the bundle does not say (annotation org.nexcage.proxmox.rootfs-size) */
  rootfsSize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0)), 4),
  /** how containers start: liblxc directly where the config allows it (auto), always liblxc, or pct */
  startPath: v.optional(v.picklist(["auto", "liblxc", "pct"]), "auto"),
  /** seconds before a pct/qm call counts as hung */
  timeout: v.optional(v.pipe(v.number(), v.minValue(1)), 300),
  /** the Proxmox CLIs (on PATH by default) */
  pct: v.optional(v.string(), "pct"),
  qm: v.optional(v.string(), "qm"),
  pvesh: v.optional(v.string(), "pvesh"),
  pvesm: v.optional(v.string(), "pvesm"),
});

// networking (src/network): which CNI network a container joins, where conflists and plugins live, and the
// built-in `nexcage` network's bridge and subnet (tests and hosts pick their own so nothing collides)
const NetworkRuleSchema = ruleSchema({
  /** a network name from the network directory, `nexcage`, or `none` */
  network: v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a network name (letters, digits, _ . -)")),
});
const cidr4 = v.pipe(v.string(), v.regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|30)$/, "must be an IPv4 CIDR such as 10.87.0.0/16 (prefix up to /30)"));
const NetworkSchema = v.strictObject({
  /** the network of containers no rule or annotation places: `none` keeps runc's behaviour (loopback only) */
  default: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must be a network name")), "none"),
  /** user conflists (*.conflist, *.json): the file's `name` is the network's name */
  dir: v.optional(absPath, "/etc/nexcage/networks"),
  /** where CNI plugin binaries are looked up (CNI_PATH), in order */
  pluginDirs: v.optional(v.array(absPath), ["/usr/lib/cni", "/opt/cni/bin"]),
  /** the built-in `nexcage` network: bridge name and host-local subnet */
  bridge: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name (1-15 characters)")), "nexcage0"),
  subnet: v.optional(cidr4, "10.87.0.0/16"),
  routing: v.optional(v.array(NetworkRuleSchema), []),
  /** seconds one CNI plugin call may take */
  timeout: v.optional(v.pipe(v.number(), v.minValue(1)), 60),
});

const NexcageConfigSchema = v.strictObject({
  $schema: v.optional(v.string()),
  defaultBackend: v.optional(backendName, "crun"),
  /** tried in order when the routed backend cannot work on this host; empty = fail instead */
  fallback: v.optional(v.array(backendName), []),
  /** whether the org.nexcage.backend annotation may choose the backend */
  annotationOverride: v.optional(v.boolean(), true),
  routing: v.optional(v.array(RuleSchema), []),
  runc: v.optional(v.strictObject({ path: v.optional(v.string()) }), {}),
  /** lxc backend: where its containers are defined (an absolute path; liblxc's default /var/lib/lxc) */
  lxc: v.optional(v.strictObject({ lxcpath: v.optional(absPath) }), {}),
  /** proxmox-lxc and proxmox-vm backends */
  proxmox: v.optional(ProxmoxSchema, {}),
  /** CNI networking for containers that have a network namespace of their own */
  network: v.optional(NetworkSchema, {}),
  /** snapshot retention: `snapshot prune` applies keepLast/maxAge ("7d"); create refuses beyond maxPerContainer */
  snapshots: v.optional(
    v.strictObject({
      keepLast: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
      maxAge: v.optional(v.pipe(v.string(), v.regex(/^\d+[smhdw]$/, "must be a number and s, m, h, d or w, e.g. 7d"))),
      maxPerContainer: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    }),
    {},
  ),
});

export type RoutingRule = v.InferOutput<typeof RuleSchema>;
export type NetworkRule = v.InferOutput<typeof NetworkRuleSchema>;
export type NetworkSettings = v.InferOutput<typeof NetworkSchema>;
export type NexcageConfig = v.InferOutput<typeof NexcageConfigSchema> & { source: string };

// Earlier NexCage (Zig) config: container_config.routing [{pattern, runtime}], crun_name_patterns,
// default_runtime / default_container_type; newer ones put routing under runtime.routing.
const LegacyRule = v.looseObject({ pattern: v.string(), runtime: v.string() });
const LegacySchema = v.looseObject({
  runtime: v.optional(v.looseObject({ routing: v.optional(v.array(LegacyRule)) })),
  container_config: v.optional(
    v.looseObject({
      routing: v.optional(v.array(LegacyRule)),
      crun_name_patterns: v.optional(v.array(v.string())),
      default_runtime: v.optional(v.string()),
      default_container_type: v.optional(v.string()),
    }),
  ),
  default_runtime: v.optional(v.string()),
});

const LEGACY_RUNTIME_NAMES: Record<string, BackendName> = {
  crun: "crun",
  runc: "runc",
  lxc: "lxc",
  proxmox_lxc: "proxmox-lxc",
  "proxmox-lxc": "proxmox-lxc",
  pct: "proxmox-lxc",
  vm: "proxmox-vm",
  qemu: "proxmox-vm",
  "proxmox-vm": "proxmox-vm",
  qm: "proxmox-vm",
  microvm: "microvm",
};

function legacyBackend(name: string, where: string, source: string): BackendName {
  const b = LEGACY_RUNTIME_NAMES[name];
  if (!b) throw new NexcageError("invalidSpec", `invalid nexcage config ${source}: ${where}: unknown runtime "${name}" (known: ${Object.keys(LEGACY_RUNTIME_NAMES).join(", ")})`);
  return b;
}

function isLegacy(data: unknown): boolean {
  if (typeof data !== "object" || data === null) return false;
  const d = data as Record<string, unknown>;
  if ("container_config" in d || "default_runtime" in d || (typeof d.runtime === "object" && d.runtime !== null)) return true;
  // the Zig releases also had a `proxmox` section (hosts, tokens ...): legacy when it is not ours
  const px = d.proxmox;
  const ours = Object.keys(ProxmoxSchema.entries);
  return typeof px === "object" && px !== null && Object.keys(px).some((k) => !ours.includes(k));
}

export function parseConfig(data: unknown, source: string): NexcageConfig {
  const config = isLegacy(data) ? fromLegacy(data, source) : parseWith(NexcageConfigSchema, data, `invalid nexcage config ${source}`);
  // a broken pattern must fail when the file is loaded, not when some id first falls through to it
  const rules: [string, { name?: string | undefined; id?: string | undefined; value?: string | undefined }][] = [
    ...config.routing.map((r, i) => [`routing[${i}]`, r] as [string, typeof r]),
    ...config.network.routing.map((r, i) => [`network.routing[${i}]`, r] as [string, typeof r]),
  ];
  rules.forEach(([where, r]) => {
    for (const p of [r.id, r.value]) {
      if (p === undefined) continue;
      try {
        compilePattern(p);
      } catch (e) {
        throw new NexcageError("invalidSpec", `invalid nexcage config ${source}: ${where} (${r.name ?? "unnamed"}): ${(e as Error).message}`);
      }
    }
  });
  return { ...config, source };
}

function fromLegacy(data: unknown, source: string): v.InferOutput<typeof NexcageConfigSchema> {
  const l = parseWith(LegacySchema, data, `invalid nexcage config ${source}`);
  const cc = l.container_config;
  const routing: RoutingRule[] = [];
  // container_config.routing replaces runtime.routing wholesale when both exist (as the Zig releases did)
  const [rules, where] = cc?.routing ? [cc.routing, "container_config.routing"] : [l.runtime?.routing ?? [], "runtime.routing"];
  rules.forEach((r, i) => routing.push({ name: `${where}[${i}]`, id: r.pattern, backend: legacyBackend(r.runtime, `${where}[${i}].runtime`, source) }));
  (cc?.crun_name_patterns ?? []).forEach((p, i) => routing.push({ name: `container_config.crun_name_patterns[${i}]`, id: p, backend: "crun" }));
  const [def, defWhere] = cc?.default_runtime
    ? [cc.default_runtime, "container_config.default_runtime"]
    : l.default_runtime
      ? [l.default_runtime, "default_runtime"]
      : [cc?.default_container_type, "container_config.default_container_type"];
  return {
    defaultBackend: def ? legacyBackend(def, defWhere, source) : "crun",
    fallback: [],
    annotationOverride: true,
    routing,
    runc: {},
    lxc: {},
    proxmox: v.parse(ProxmoxSchema, {}),
    network: v.parse(NetworkSchema, {}),
    snapshots: {},
  };
}

/** --config, then NEXCAGE_CONFIG, then /etc/nexcage/config.json if present, else built-in defaults. */
export async function loadConfig(explicit?: string): Promise<NexcageConfig> {
  const path = explicit ?? process.env.NEXCAGE_CONFIG ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (!path) return parseConfig({}, "(built-in defaults)");
  return parseConfig(await readJsonFile(path, "cannot load nexcage config"), path);
}
