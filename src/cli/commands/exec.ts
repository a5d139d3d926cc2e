import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { getRuntime, int, str } from "../context.ts";
import type { ParseOptions } from "../argv.ts";
import { idArg, processIoArgs } from "../args.ts";

// the first positional is the id; everything after it is the command line, flags included
export const parse: ParseOptions = { stopAfterPositionals: 1, repeatable: ["env", "additional-gids", "cap"] };

export default defineCommand({
  meta: { name: "exec", description: "run a process in a container; returns its exit code (0 with --detach)" },
  args: {
    ...idArg,
    command: { type: "positional", description: "command and arguments (or --process)", required: false },
    process: { type: "string", alias: "p", description: "path to a process.json (runtime-spec Process)" },
    tty: { type: "boolean", alias: "t", description: "allocate a pseudo-TTY" },
    cwd: { type: "string", description: "working directory in the container" },
    env: { type: "string", alias: "e", description: "set an environment variable (repeatable)" },
    user: { type: "string", alias: "u", description: "uid[:gid]" },
    detach: { type: "boolean", alias: "d", description: "detach from the process" },
    ...processIoArgs,
    "process-label": { type: "string", description: "accepted for compatibility" },
    "apparmor": { type: "string", description: "accepted for compatibility" },
    "no-new-privs": { type: "boolean", description: "accepted for compatibility" },
    cap: { type: "string", alias: "c", description: "accepted for compatibility" },
    "additional-gids": { type: "string", alias: "g", description: "accepted for compatibility" },
    cgroup: { type: "string", description: "accepted for compatibility" },
  },
  async run({ args }) {
    const [id, ...command] = args._ as string[];
    const user = str(args.user) ? parseUser(args.user as string) : undefined;
    return getRuntime().exec(id as string, {
      ...(str(args.process) ? { processFile: args.process as string } : { args: command }),
      ...(args.tty === true ? { tty: true } : {}),
      ...(str(args.cwd) ? { cwd: args.cwd as string } : {}),
      ...(Array.isArray(args.env) ? { env: args.env as string[] } : {}),
      ...(user ? { user } : {}),
      detach: args.detach === true,
      ...(str(args["pid-file"]) ? { pidFile: args["pid-file"] as string } : {}),
      ...(str(args["console-socket"]) ? { consoleSocket: args["console-socket"] as string } : {}),
      preserveFds: int(args["preserve-fds"], "preserve-fds"),
    });
  },
});

function parseUser(u: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(u);
  if (!m) throw new NexcageError("usage", `invalid --user ${JSON.stringify(u)}: want uid[:gid]`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}
