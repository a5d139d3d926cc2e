// Entry of the CLI. citty defines the commands and renders help; parsing follows runc's rules
// (src/cli/argv.ts) and the exit code is ours to set: citty's runMain always exits 1, but `run` and
// `exec` must pass the container's exit code through, and every error class has its own code.
import { renderUsage } from "citty";
import { parseFlags, splitGlobal } from "./argv.ts";
import { commands } from "./commands/index.ts";
import { setGlobals } from "./context.ts";
import { NexcageError } from "../core/errors.ts";
import { applyLogFlags, out, reportError } from "./output.ts";

const USAGE = `nexcage - OCI runtime that routes containers to crun, runc, LXC and Proxmox (later microVM) backends

usage: nexcage [--root DIR] [--log FILE] [--log-format text|json] [--debug] [--systemd-cgroup] [--config FILE] COMMAND [args]

commands:
  create, start, run, state, kill, delete, exec, pause, resume, ps, list, update, events   (runc's contract)
  spec, features, version
  checkpoint, restore      CRIU with runc's flags, or --fs-only (filesystem snapshots)
  snapshot create|list|restore|delete|verify|prune|export|import ID [NAME]
  port ls|add|rm ID [PORTS] port forwards of a container on a CNI network (8080:80/tcp)
  route ID [--bundle B]    which backend a container goes to, and why
  health | doctor          whether each backend can work on this host
  demo                     run the embedded busybox container end to end

Run 'nexcage COMMAND --help' for a command's flags.
`;

export async function main(argv: string[]): Promise<number> {
  try {
    const { globals, verb, rest } = splitGlobal(argv);
    applyLogFlags(globals);
    if (globals.version === true) {
      const { versionText } = await import("./commands/version.ts");
      out(versionText());
      return 0;
    }
    if (verb === undefined || globals.help === true || verb === "help") {
      out(USAGE);
      return 0;
    }
    const load = commands[verb];
    if (!load) throw new NexcageError("usage", `unknown command ${JSON.stringify(verb)}; see 'nexcage --help'`);
    const mod = await load();
    const cmd = mod.default;
    if (wantsHelp(rest, mod.parse?.stopAfterPositionals)) {
      out(`${await renderUsage(cmd)}\n`);
      return 0;
    }
    const args = (typeof cmd.args === "function" ? await cmd.args() : cmd.args) ?? {};
    const parsed = parseFlags(rest, args, mod.parse);
    const required = Object.values(args as Record<string, { type?: string; required?: boolean }>).filter((d) => d.type === "positional" && d.required).length;
    if (parsed._.length < required) {
      throw new NexcageError("usage", `"${verb}" requires ${required === 1 ? "a container id" : `${required} arguments`}; see 'nexcage ${verb} --help'`);
    }
    setGlobals(globals);
    const result = await cmd.run?.({ rawArgs: rest, args: parsed as never, cmd });
    return typeof result === "number" ? result : 0;
  } catch (e) {
    return reportError(e);
  }
}

/** --help/-h among the verb's own flags (not inside an exec'd command line). */
function wantsHelp(rest: string[], stopAfter: number | undefined): boolean {
  let positionals = 0;
  for (const tok of rest) {
    if (tok === "--") return false;
    if (tok === "--help" || tok === "-h" || tok === "-help") return true;
    if (!tok.startsWith("-") && stopAfter !== undefined && ++positionals >= stopAfter) return false;
  }
  return false;
}
