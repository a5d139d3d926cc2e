// Network definitions: the built-in `nexcage` network (bridge + host-local IPAM + portmap + firewall +
// bandwidth) and user conflists from the network directory (network.dir, *.conflist or *.json, named by
// their `name`). A conflist in the directory named `nexcage` replaces the built-in one.
import { readdirSync } from "node:fs";
import type { NetworkSettings } from "../core/config.ts";
import { NexcageError } from "../core/errors.ts";
import { readJsonFile } from "../core/validate.ts";
import { parseConfList, type ConfList } from "./cni.ts";
import { BUILTIN_NETWORK } from "./select.ts";

/** The built-in network. `dataDir` keeps host-local's leases under nexcage's root (on /run: a reboot,
 *  which ends every container, also ends every lease). */
export function builtinNetwork(s: NetworkSettings, dataDir: string): ConfList {
  return {
    cniVersion: "1.0.0",
    name: BUILTIN_NETWORK,
    plugins: [
      {
        type: "bridge",
        bridge: s.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: "host-local", ranges: [[{ subnet: s.subnet }]], routes: [{ dst: "0.0.0.0/0" }], dataDir },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
      // iptables explicitly: with firewalld running the plugin would otherwise put the rules there
      { type: "firewall", backend: "iptables" },
      { type: "bandwidth", capabilities: { bandwidth: true } },
    ],
  };
}

async function userNetworks(dir: string): Promise<Map<string, { file: string; list: ConfList }>> {
  const out = new Map<string, { file: string; list: ConfList }>();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".conflist") || f.endsWith(".json")).sort();
  } catch {
    return out; // no directory: only the built-in network
  }
  for (const f of files) {
    const file = `${dir}/${f}`;
    const list = parseConfList(await readJsonFile(file, "cannot load CNI network"), file);
    const seen = out.get(list.name);
    if (seen) throw new NexcageError("invalidSpec", `invalid CNI network ${file}: network ${JSON.stringify(list.name)} is also defined in ${seen.file}`);
    out.set(list.name, { file, list });
  }
  return out;
}

export async function loadNetwork(s: NetworkSettings, name: string, dataDir: string): Promise<ConfList> {
  const user = await userNetworks(s.dir);
  const found = user.get(name)?.list ?? (name === BUILTIN_NETWORK ? builtinNetwork(s, dataDir) : undefined);
  if (!found) {
    const known = [BUILTIN_NETWORK, ...[...user.keys()].filter((n) => n !== BUILTIN_NETWORK)].join(", ");
    throw new NexcageError("invalidSpec", `network ${JSON.stringify(name)} not found: no conflist with that name in ${s.dir} (networks: ${known}, none)`);
  }
  return found;
}

/** every network a container can name, for `health` */
export async function listNetworks(s: NetworkSettings, dataDir: string): Promise<ConfList[]> {
  const user = await userNetworks(s.dir);
  const lists = [...user.values()].map((u) => u.list);
  if (!user.has(BUILTIN_NETWORK)) lists.unshift(builtinNetwork(s, dataDir));
  return lists;
}
