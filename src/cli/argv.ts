// argv the way runc's parser (urfave/cli over Go's flag package) reads it, driven by citty arg definitions:
//   --flag value, --flag=value, -flag value, -flag=value (single-dash long flags: `-no-subreaper`),
//   booleans take no value (`--detach`) or an explicit `--detach=false`; `--` ends options.
// Global flags come before the verb and are parsed separately (citty would drop them); options may follow
// positionals, except where the command takes a trailing command line (exec): there the first positional
// after the id starts the container's argv and nothing after it is ours.
import type { ArgsDef } from "citty";
import { NexcageError } from "../core/errors.ts";

export type Parsed = { _: string[] } & Record<string, string | boolean | string[] | undefined>;

export interface ParseOptions {
  /** positionals after which parsing stops (exec: 1, the id) */
  stopAfterPositionals?: number;
  /** string flags that may repeat (`--env A --env B`) */
  repeatable?: string[];
}

export function parseFlags(argv: string[], defs: ArgsDef, opts: ParseOptions = {}): Parsed {
  const byName = new Map<string, { key: string; type: string }>();
  for (const [key, def] of Object.entries(defs)) {
    if (def.type === "positional") continue;
    const type = def.type ?? "string";
    byName.set(key, { key, type });
    for (const a of [(def as { alias?: string | string[] }).alias ?? []].flat()) byName.set(a, { key, type });
  }
  const out: Parsed = { _: [] };
  for (const [key, def] of Object.entries(defs)) {
    if (def.type !== "positional" && def.default !== undefined) out[key] = def.default as string | boolean;
  }
  const repeatable = new Set(opts.repeatable ?? []);
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i] as string;
    const stopped = opts.stopAfterPositionals !== undefined && out._.length >= opts.stopAfterPositionals;
    if (stopped) {
      out._.push(...argv.slice(i));
      break;
    }
    if (tok === "--") {
      out._.push(...argv.slice(i + 1));
      break;
    }
    if (!tok.startsWith("-") || tok === "-") {
      out._.push(tok);
      continue;
    }
    const body = tok.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const def = byName.get(name);
    if (!def) throw new NexcageError("usage", `flag provided but not defined: -${name}`);
    let value: string | boolean;
    if (def.type === "boolean") {
      if (eq >= 0) {
        const raw = body.slice(eq + 1);
        if (!/^(true|false|1|0|t|f)$/i.test(raw)) throw new NexcageError("usage", `invalid boolean value ${JSON.stringify(raw)} for -${name}`);
        value = /^(true|1|t)$/i.test(raw);
      } else value = true;
    } else if (eq >= 0) {
      value = body.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new NexcageError("usage", `flag needs an argument: -${name}`);
      value = next;
      i++;
    }
    if (repeatable.has(def.key)) {
      const prev = out[def.key];
      out[def.key] = [...(Array.isArray(prev) ? prev : []), String(value)];
    } else out[def.key] = value;
  }
  return out;
}

/** The global flags runc accepts before the verb (plus nexcage's --config). */
export const globalArgs = {
  root: { type: "string", description: "root directory for storage of container state", default: "/run/nexcage" },
  log: { type: "string", description: "log file (default: stderr for errors only)" },
  "log-format": { type: "string", description: "log format: text or json", default: "text" },
  debug: { type: "boolean", description: "enable debug logging" },
  "systemd-cgroup": { type: "boolean", description: "use systemd for cgroups (accepted; passed to the backend)" },
  rootless: { type: "string", description: "accepted for runc compatibility", default: "auto" },
  criu: { type: "string", description: "path to criu (accepted for runc compatibility)" },
  config: { type: "string", description: "nexcage config file (default $NEXCAGE_CONFIG or /etc/nexcage/config.json)" },
  help: { type: "boolean", alias: "h", description: "show help" },
  version: { type: "boolean", alias: "v", description: "print the version" },
} as const satisfies ArgsDef;

/** Split `[globals] verb [verb args]`: globals are flags until the first bare word. */
export function splitGlobal(argv: string[]): { globals: Parsed; verb: string | undefined; rest: string[] } {
  // find the verb: the first token that is not a flag or a global flag's value
  const stringGlobals = new Set<string>();
  for (const [k, d] of Object.entries(globalArgs)) if (d.type === "string") stringGlobals.add(k);
  let i = 0;
  for (; i < argv.length; i++) {
    const tok = argv[i] as string;
    if (tok === "--") break;
    if (!tok.startsWith("-")) break;
    const name = tok.replace(/^--?/, "").split("=")[0] ?? "";
    if (stringGlobals.has(name) && !tok.includes("=")) i++;
  }
  const globals = parseFlags(argv.slice(0, i), globalArgs);
  const verb = argv[i] === "--" ? argv[i + 1] : argv[i];
  const rest = argv.slice(argv[i] === "--" ? i + 2 : i + 1);
  return { globals, verb, rest };
}
