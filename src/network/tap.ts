// The seam for VM backends (Kata's "tcfilter" model): a VM cannot sit on a veth, so its TAP device is
// created inside the container's network namespace, next to the CNI interface, and tc mirred redirects
// every frame arriving on one to the other. The guest NIC takes the CNI interface's MAC and address, so
// the bridge, host-local's lease, portmap's DNAT, the egress chains (keyed by the bridge port and the
// address) and the bandwidth qdiscs apply to the VM exactly as to a container; nothing on the host changes.
//
// A VM backend does, after nexcage attached the network (create returns `data.netns`, the namespace the
// VM will live in; the engine pins it and runs CNI ADD there):
//   const att = attachmentOf(ctx.root, rec.id);            // undefined: no network asked for
//   const j = joinTap(att.netns, { ifname: att.ifname });    // tap0 + the two redirects
//   nsenter --net=<att.netns> qemu ... -netdev tap,id=n0,ifname=<j.tap>,script=no,downscript=no \
//       -device virtio-net-pci,netdev=n0,mac=<j.mac>   and the guest's ip=<j.guestIp> (kernel cmdline)
// The TAP lives and dies with the namespace; CNI DEL and the unpin at delete remove everything.
import { readFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import type { Attachment } from "./index.ts";
import { inNetns } from "./netns.ts";

export interface TapJoin {
  tap: string;
  /** the MAC the guest NIC must use (the CNI interface's) */
  mac: string;
  /** the container's addresses with prefix (10.87.0.5/16) */
  addresses: string[];
  gateway?: string;
  mtu: number;
  /** kernel `ip=` argument for the first address: client::gateway:netmask::eth0:off */
  guestIp?: string;
}

/** the attachment record of a container (for VM backends, which do not hold the engine) */
export function attachmentOf(root: string, id: string): Attachment | undefined {
  try {
    return JSON.parse(readFileSync(`${root}/network/attachments/${id}.json`, "utf8")) as Attachment;
  } catch {
    return undefined;
  }
}

function must(netns: string, argv: string[], what: string): string {
  const r = inNetns(netns, argv);
  if (r.code !== 0) throw new NexcageError("failure", `${what}: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return r.stdout;
}

/** Redirect every frame arriving on `a` out of `b` and the other way round (ingress qdisc + u32 match-all). */
export function redirect(netns: string, a: string, b: string): void {
  for (const [from, to] of [[a, b], [b, a]] as const) {
    must(netns, ["tc", "qdisc", "replace", "dev", from, "ingress"], `tc ingress on ${from}`);
    must(netns, ["tc", "filter", "replace", "dev", from, "parent", "ffff:", "pref", "1", "protocol", "all", "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to], `tc redirect ${from} -> ${to}`);
  }
}

function netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join(".");
}

/** Create the TAP next to the CNI interface and join the two; returns what the guest must be given. */
export function joinTap(netns: string, opts: { ifname?: string; tap?: string; multiQueue?: boolean } = {}): TapJoin {
  const ifname = opts.ifname ?? "eth0";
  const tap = opts.tap ?? "tap0";
  const info = JSON.parse(must(netns, ["ip", "-j", "addr", "show", "dev", ifname], `${ifname} in ${netns}`))[0] as { address: string; mtu: number; addr_info: { family: string; local: string; prefixlen: number; scope: string }[] };
  const route = JSON.parse(must(netns, ["ip", "-j", "route", "show", "default"], "default route"))[0] as { gateway?: string } | undefined;
  must(netns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap", ...(opts.multiQueue ? ["multi_queue"] : [])], `create ${tap}`);
  must(netns, ["ip", "link", "set", tap, "mtu", String(info.mtu), "up"], `${tap} up`);
  redirect(netns, ifname, tap);
  // the guest configures its own link-local address
  const addresses = info.addr_info.filter((a) => (a.family === "inet" || a.family === "inet6") && a.scope !== "link").map((a) => `${a.local}/${a.prefixlen}`);
  const v4 = info.addr_info.find((a) => a.family === "inet");
  const j: TapJoin = { tap, mac: info.address, addresses, mtu: info.mtu };
  if (route?.gateway) j.gateway = route.gateway;
  if (v4) j.guestIp = `${v4.local}::${route?.gateway ?? ""}:${netmask(v4.prefixlen)}::eth0:off`;
  return j;
}
