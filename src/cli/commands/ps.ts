import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { getRuntime, out } from "../context.ts";
import { idArg } from "../args.ts";

export default defineCommand({
  meta: { name: "ps", description: "list the processes of a container (json: a bare array of pids)" },
  args: {
    ...idArg,
    format: { type: "string", alias: "f", description: "table or json", default: "table" },
  },
  async run({ args }) {
    const pids = await getRuntime().ps(args._[0] as string);
    if (args.format === "json") return out(`${JSON.stringify(pids)}\n`);
    if (args.format !== "table") throw new NexcageError("usage", `invalid format option ${JSON.stringify(args.format)}`);
    // like runc: the host's `ps -ef`, header plus the container's rows
    const psArgs = args._.slice(1).length ? (args._.slice(1) as string[]) : ["-ef"];
    const res = Bun.spawnSync(["ps", ...psArgs], { stdout: "pipe", stderr: "pipe" });
    if (res.exitCode !== 0) throw new NexcageError("failure", `ps: ${res.stderr.toString().trim()}`);
    const [header = "", ...lines] = res.stdout.toString().split("\n");
    const col = header.trim().split(/\s+/).indexOf("PID");
    if (col < 0) throw new NexcageError("failure", "ps: no PID column in its output");
    const wanted = new Set(pids.map(String));
    out(`${[header, ...lines.filter((l) => wanted.has(l.trim().split(/\s+/)[col] ?? ""))].join("\n")}\n`);
  },
});
