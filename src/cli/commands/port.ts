import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { formatPort, parsePortRefs, parsePorts, usageFail } from "../../network/select.ts";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "port", description: "port forwards of a container on a CNI network: port ls ID | port add ID 8080:80/tcp... | port rm ID 8080/tcp..." },
  args: {
    action: { type: "positional", required: true, description: "ls, add or rm" },
    id: { type: "positional", required: true, description: "container id" },
    format: { type: "string", alias: "f", description: "table or json", default: "table" },
  },
  async run({ args }) {
    const [action, id, ...items] = args._ as string[];
    if (args.format !== "table" && args.format !== "json") throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    const net = await getRuntime().network();
    if ((action === "add" || action === "rm") && !items.length) throw new NexcageError("usage", `port ${action} needs at least one port: nexcage port ${action} ${id} ${action === "add" ? "8080:80/tcp" : "8080/tcp"}`);
    const ports =
      action === "ls" ? net.ports(id as string)
      : action === "add" ? await net.addPorts(id as string, parsePorts(items.join(","), "port", usageFail))
      : action === "rm" ? await net.removePorts(id as string, parsePortRefs(items))
      : undefined;
    if (!ports) throw new NexcageError("usage", `unknown port action ${JSON.stringify(action)}: ls, add or rm`);
    out(args.format === "json" ? `${JSON.stringify(ports)}\n` : ports.map((p) => `${formatPort(p)}\n`).join(""));
  },
});
