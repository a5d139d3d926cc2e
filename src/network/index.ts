// Container networking: the engine's side. attach() after a backend created the container (CNI ADD into
// the init's network namespace), detach() on delete and on every rollback (CNI DEL, idempotent), ports on a
// running container, CHECK for `health`, rx/tx counters for `events --stats`.
//
// Crash safety: the attachment record (<root>/network/attachments/<id>.json) is written BEFORE anything is
// made, and names everything that may exist: the pinned netns, the network's conflist as it was used, the
// runtime config (portMappings must be handed to portmap's DEL again), port claims and the nft key. detach()
// undoes all of it from that record alone, whatever step a crash interrupted; the record goes last.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { BackendName, ContainerRecord } from "../backends/types.ts";
import type { NexcageConfig } from "../core/config.ts";
import { NexcageError } from "../core/errors.ts";
import { faultPoint } from "../core/fault.ts";
import { log } from "../core/log.ts";
import type { Spec } from "../oci/spec.ts";
import { addList, checkList, delList, findPlugin, sweepBridgeMasq, type CniCall, type CniResult, type ConfList, type PortMapping, type RuntimeConfig } from "./cni.ts";
import { applyEgress, bridgedTrafficFiltered, chainKey, removeEgress } from "./egress.ts";
import { loadNetwork } from "./networks.ts";
import { isNetns, pin, unpin } from "./netns.ts";
import { claimName, claimPorts, claimsOf, releaseClaim } from "./ports.ts";
import { EGRESS_ANNOTATION, formatPort, PORTS_ANNOTATION, selectNetwork, type EgressPolicy } from "./select.ts";

/** what nexcage records per attached container */
export interface Attachment {
  version: 1;
  id: string;
  network: string;
  /** the interface inside the container */
  ifname: string;
  /** the pinned network namespace (CNI_NETNS) */
  netns: string;
  /** the conflist as used for ADD: DEL and CHECK use the same one even if the file changed since */
  conflist: ConfList;
  runtimeConfig: RuntimeConfig;
  egress: EgressPolicy;
  /** adding: something may exist; attached: all of it exists */
  phase: "adding" | "attached";
  result?: CniResult;
  /** host side of the container's veth (bridge port), the container's addresses */
  hostIf?: string;
  ips?: string[];
  mac?: string;
}

/** what the network needs of the engine (the Runtime hands itself in; no import of it here) */
export interface NetworkHost {
  root: string;
  getConfig(): Promise<NexcageConfig>;
  store: { withLock<T>(id: string, fn: () => Promise<T>): Promise<T>; read(id: string): ContainerRecord | undefined };
}

export const IFNAME = "eth0";
// a lock name no container id can have (ids never contain '@')
const NET_LOCK = "@network";

export class Network {
  readonly dir: string;
  constructor(private readonly host: NetworkHost) {
    this.dir = `${host.root}/network`;
  }

  private path(kind: "attachments" | "netns" | "ports" | "ipam", id = ""): string {
    return `${this.dir}/${kind}${id ? `/${kind === "attachments" ? `${id}.json` : id}` : ""}`;
  }

  read(id: string): Attachment | undefined {
    try {
      return JSON.parse(readFileSync(this.path("attachments", id), "utf8")) as Attachment;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new NexcageError("failure", `network record of ${id} is unreadable: ${(e as Error).message}`);
    }
  }

  private write(a: Attachment): void {
    mkdirSync(this.path("attachments"), { recursive: true, mode: 0o700 });
    const file = this.path("attachments", a.id);
    writeFileSync(`${file}.tmp`, JSON.stringify(a));
    renameSync(`${file}.tmp`, file);
  }

  ids(): string[] {
    try {
      return readdirSync(this.path("attachments")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  }

  private call(a: Attachment, cfg: NexcageConfig, rc: RuntimeConfig = a.runtimeConfig): CniCall {
    return { containerId: a.id, netns: a.netns, ifname: a.ifname, path: cfg.network.pluginDirs, runtimeConfig: rc, timeoutMs: cfg.network.timeout * 1000 };
  }

  private netLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.host.store.withLock(NET_LOCK, fn);
  }

  /** does `id` still own the port claim `name` (its attachment lists the port)? */
  private holds = (id: string, name: string): boolean => {
    const a = this.read(id);
    return !!a && (a.runtimeConfig.portMappings ?? []).some((m) => claimName(m) === name);
  };

  /**
   * CNI ADD for a freshly created container, when its config asks for a network. `netnsSource` is the
   * network namespace to attach: the init's (/proc/PID/ns/net) or, for a VM backend, the one it made
   * for its TAP (CreateResult.data.netns). On failure everything made is removed before the error.
   */
  async attach(rec: ContainerRecord, spec: Spec, netnsSource?: string): Promise<Attachment | undefined> {
    const cfg = await this.host.getConfig();
    const req = selectNetwork(cfg.network, rec.id, rec.backend as BackendName, spec);
    if (!req) return undefined;
    await this.detach(rec.id); // what a crashed earlier container of this id left
    const list = await loadNetwork(cfg.network, req.network, this.path("ipam"));
    const types = list.plugins.map((p) => p.type);
    const needs = (cap: string, what: string, annotation: string) => {
      if (!list.plugins.some((p) => p.capabilities?.[cap])) throw new NexcageError("invalidSpec", `invalid config.json: annotations.${annotation}: network ${list.name} has no plugin with the ${cap} capability (${what})`);
    };
    if (req.ports.length) needs("portMappings", "add portmap to its conflist", PORTS_ANNOTATION);
    if (req.bandwidth) needs("bandwidth", "add bandwidth to its conflist", "org.nexcage.bandwidth.*");
    if (req.egress.mode !== "allow" && types.includes("bridge") && !bridgedTrafficFiltered()) {
      throw new NexcageError("unsupported", `annotations.${EGRESS_ANNOTATION}: traffic between containers on the bridge of network ${list.name} bypasses nftables here: enable br_netfilter (modprobe br_netfilter; sysctl net.bridge.bridge-nf-call-iptables=1)`);
    }
    const a: Attachment = {
      version: 1,
      id: rec.id,
      network: list.name,
      ifname: IFNAME,
      netns: this.path("netns", rec.id),
      conflist: list,
      runtimeConfig: { ...(req.ports.length ? { portMappings: req.ports } : {}), ...(req.bandwidth ? { bandwidth: req.bandwidth } : {}) },
      egress: req.egress,
      phase: "adding",
    };
    // the intent first: from here on a crash leaves a record that detach() undoes
    mkdirSync(this.path("ports"), { recursive: true, mode: 0o700 });
    this.write(a);
    faultPoint("network.after-intent");
    try {
      pin(netnsSource ?? `/proc/${rec.pid}/ns/net`, a.netns);
      faultPoint("network.after-pin");
      await this.netLock(async () => claimPorts(this.path("ports"), a.id, req.ports, this.holds));
      faultPoint("network.after-claim");
      // each plugin's result is journaled: DEL after a crash hands the plugins what they returned
      const result = await addList(list, this.call(a, cfg), (i, partial) => {
        a.result = partial;
        this.write(a);
        faultPoint(`network.after-add-${list.plugins[i]?.type}`);
      });
      Object.assign(a, describe(result, a.ifname));
      a.result = result;
      this.write(a);
      faultPoint("network.after-add");
      if (req.egress.mode !== "allow") {
        if (!a.hostIf || !a.ips?.length) throw new NexcageError("unsupported", `annotations.${EGRESS_ANNOTATION}: network ${list.name} reports no host-side interface or address for the container, which an egress policy needs`);
        const t = { key: chainKey(a.id), ips: a.ips, hostIf: a.hostIf };
        await this.netLock(async () => applyEgress(t, req.egress));
        faultPoint("network.after-egress");
      }
      a.phase = "attached";
      this.write(a);
      log().debug(`network ${list.name}: ${a.id} has ${a.ips?.join(", ")} on ${a.hostIf}`);
      return a;
    } catch (e) {
      await this.detach(rec.id).catch((d) => log().warn(`network rollback of ${rec.id}: ${(d as Error).message}`));
      throw e;
    }
  }

  /**
   * Idempotent: removes whatever the record says may exist — egress chains, CNI attachment (DEL through the
   * whole list with the cached result), port claims, the netns pin — then the record. Throws when a plugin's
   * DEL fails, keeping the record (and the pinned netns) so a later delete can try again.
   */
  async detach(id: string): Promise<void> {
    const a = this.read(id);
    if (!a) return;
    const cfg = await this.host.getConfig();
    if (a.egress.mode !== "allow") await this.netLock(async () => removeEgress(chainKey(id)));
    // DEL needs a real netns or none at all: a pin file a crash left unmounted is no namespace
    if (!isNetns(a.netns)) unpin(a.netns);
    await delList(a.conflist, this.call(a, cfg), a.result);
    sweepBridgeMasq(a.conflist, id, a.result);
    faultPoint("network.after-del");
    for (const name of claimsOf(this.path("ports"), id)) releaseClaim(this.path("ports"), name, id);
    unpin(a.netns);
    rmSync(this.path("attachments", id), { force: true });
  }

  /** rx/tx counters in runc's `network_interfaces` shape: the host-side name, the container's view */
  stats(id: string, pid: number): NetworkInterfaceStats[] | undefined {
    const a = this.read(id);
    if (!a || a.phase !== "attached") return undefined;
    const dev = readNetDev(`/proc/${pid}/net/dev`).get(a.ifname);
    if (!dev) return undefined;
    const n = (i: number) => dev[i] ?? 0;
    return [{ Name: a.hostIf ?? a.ifname, RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3), TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11) }];
  }

  /** CNI CHECK of one attachment (throws the plugin's complaint) */
  async check(id: string): Promise<void> {
    const a = this.read(id);
    if (!a) throw new NexcageError("notFound", `container ${id} has no network attachment`);
    if (a.phase !== "attached" || !a.result) throw new NexcageError("failure", `the network attachment of ${id} is incomplete (a create crashed): delete --force removes it`);
    if (a.conflist.disableCheck) return;
    await checkList(a.conflist, this.call(a, await this.host.getConfig()), a.result);
  }

  /** port forwards of a container */
  ports(id: string): PortMapping[] {
    const a = this.read(id);
    if (!a) throw new NexcageError("notFound", `container ${id} has no network (${PORTS_ANNOTATION} needs org.nexcage.network)`);
    return a.runtimeConfig.portMappings ?? [];
  }

  /**
   * Change a running container's port forwards: portmap alone is run again (DEL with the old mappings, ADD
   * with the new ones and the cached result as prevResult), the claims follow. The record is written with
   * the new set before portmap runs, so a crash in between leaves nothing detach() would not remove.
   */
  async setPorts(id: string, next: PortMapping[]): Promise<PortMapping[]> {
    return this.host.store.withLock(id, async () => {
      if (!this.host.store.read(id)) throw new NexcageError("notFound", `container does not exist: ${id}`);
      const a = this.read(id);
      if (!a || a.phase !== "attached" || !a.result) throw new NexcageError("badState", `container ${id} has no network attachment (create it with org.nexcage.network)`);
      const portmap = a.conflist.plugins.find((p) => p.capabilities?.portMappings);
      if (!portmap) throw new NexcageError("unsupported", `network ${a.network} has no plugin with the portMappings capability (add portmap to its conflist)`);
      const cfg = await this.host.getConfig();
      const prev = a.runtimeConfig.portMappings ?? [];
      await this.netLock(async () => claimPorts(this.path("ports"), id, next, this.holds));
      const list: ConfList = { ...a.conflist, plugins: [portmap] };
      // portmap's DEL removes the container's whole chain, whatever mappings it is handed; it only skips
      // the call when handed none
      const union = [...prev, ...next.filter((n) => !prev.some((p) => claimName(p) === claimName(n)))];
      a.runtimeConfig = { ...a.runtimeConfig, portMappings: union };
      this.write(a);
      const result = a.result;
      if (prev.length) await delList(list, this.call(a, cfg, { ...a.runtimeConfig, portMappings: prev }), result);
      faultPoint("network.ports-after-del");
      try {
        if (next.length) await addList(list, this.call(a, cfg, { ...a.runtimeConfig, portMappings: next }), undefined, result);
      } catch (e) {
        // put the old forwards back; the claims of the new ones go
        if (prev.length) await addList(list, this.call(a, cfg, { ...a.runtimeConfig, portMappings: prev }), undefined, result).catch(() => {});
        a.runtimeConfig = { ...a.runtimeConfig, portMappings: prev };
        if (!prev.length) delete a.runtimeConfig.portMappings;
        this.write(a);
        for (const name of claimsOf(this.path("ports"), id)) if (!prev.some((m) => claimName(m) === name)) releaseClaim(this.path("ports"), name, id);
        throw e;
      }
      a.runtimeConfig = { ...a.runtimeConfig, portMappings: next };
      if (!next.length) delete a.runtimeConfig.portMappings;
      this.write(a);
      for (const name of claimsOf(this.path("ports"), id)) if (!next.some((m) => claimName(m) === name)) releaseClaim(this.path("ports"), name, id);
      return next;
    });
  }

  async addPorts(id: string, add: PortMapping[]): Promise<PortMapping[]> {
    const cur = this.ports(id);
    for (const m of add) {
      const same = cur.find((c) => claimName(c) === claimName(m));
      if (same) throw new NexcageError("exists", `host port ${m.hostPort}/${m.protocol} is already forwarded to container ${id} (${formatPort(same)})`);
    }
    return this.setPorts(id, [...cur, ...add]);
  }

  async removePorts(id: string, hostPorts: { hostPort: number; protocol: "tcp" | "udp" }[]): Promise<PortMapping[]> {
    const cur = this.ports(id);
    for (const r of hostPorts) {
      if (!cur.some((c) => claimName(c) === claimName(r))) throw new NexcageError("notFound", `container ${id} forwards no host port ${r.hostPort}/${r.protocol}`);
    }
    return this.setPorts(id, cur.filter((c) => !hostPorts.some((r) => claimName(r) === claimName(c))));
  }

  /**
   * For `health`: can the built-in network work here (plugins, nft, iptables), and CNI CHECK of every
   * attachment. Never throws; a problem is a sentence with the fix.
   */
  async health(): Promise<NetworkHealth> {
    const h: NetworkHealth = { ok: true, problems: [], details: {}, containers: [] };
    let cfg: NexcageConfig;
    try {
      cfg = await this.host.getConfig();
    } catch (e) {
      return { ...h, ok: false, problems: [(e as Error).message] };
    }
    h.details.default = cfg.network.default;
    h.details.plugins = cfg.network.pluginDirs.join(":");
    for (const type of ["bridge", "host-local", "portmap", "firewall", "bandwidth", "loopback"]) {
      try {
        findPlugin(type, cfg.network.pluginDirs);
      } catch (e) {
        h.problems.push((e as Error).message);
      }
    }
    for (const tool of ["nft", "iptables", "mount", "nsenter"]) if (!Bun.which(tool)) h.problems.push(`${tool} not found on PATH (apt-get install ${tool === "nft" ? "nftables" : tool === "iptables" ? "iptables" : "util-linux"})`);
    h.details.brNetfilter = bridgedTrafficFiltered() ? "on" : "off (egress policies on bridge networks are refused: modprobe br_netfilter)";
    for (const id of this.ids()) {
      const a = this.read(id);
      const entry: NetworkHealth["containers"][number] = { id, network: a?.network ?? "?", check: "ok" };
      if (a?.ips) entry.ips = a.ips;
      if (!this.host.store.read(id)) entry.check = "orphaned: the container is gone (a failed delete --force); delete --force it again";
      else {
        try {
          await this.check(id);
        } catch (e) {
          entry.check = (e as Error).message;
        }
      }
      if (entry.check !== "ok") h.problems.push(`container ${id}: ${entry.check}`);
      h.containers.push(entry);
    }
    h.ok = !h.problems.length;
    return h;
  }

  /** attachment records whose container record is gone (a crash between the two removals) */
  orphans(): string[] {
    return this.ids().filter((id) => !this.host.store.read(id));
  }

  exists(id: string): boolean {
    return existsSync(this.path("attachments", id));
  }
}

export interface NetworkHealth {
  ok: boolean;
  problems: string[];
  details: Record<string, string>;
  containers: { id: string; network: string; ips?: string[]; check: string }[];
}

export interface NetworkInterfaceStats {
  Name: string;
  RxBytes: number;
  RxPackets: number;
  RxErrors: number;
  RxDropped: number;
  TxBytes: number;
  TxPackets: number;
  TxErrors: number;
  TxDropped: number;
}

/** /proc/PID/net/dev: interface → its 16 counters */
export function readNetDev(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n").slice(2)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim().split(/\s+/).map(Number));
  }
  return out;
}

/** the host-side interface, the container's addresses and MAC, from a CNI result */
export function describe(r: CniResult, ifname: string): Pick<Attachment, "hostIf" | "ips" | "mac"> {
  const ifs = r.interfaces ?? [];
  const inside = ifs.findIndex((i) => i.sandbox && i.name === ifname);
  const ips = (r.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === inside).map((ip) => ip.address.split("/")[0] as string);
  // the bridge plugin lists the bridge, then the host veth, then the container's side
  const hostIf = ifs.find((i, n) => !i.sandbox && n !== 0 && n === inside - 1)?.name ?? ifs.find((i) => !i.sandbox && i.name.startsWith("veth"))?.name;
  const mac = ifs[inside]?.mac;
  return { ...(hostIf ? { hostIf } : {}), ips, ...(mac ? { mac } : {}) };
}
