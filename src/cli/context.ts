// What every command shares: the parsed global flags and a lazily built Runtime.
import type { Parsed } from "./argv.ts";
import { NexcageError } from "../core/errors.ts";
import { Runtime } from "../runtime.ts";

let globals: Parsed = { _: [] };
let runtime: Runtime | undefined;

export function setGlobals(g: Parsed): void {
  globals = g;
  runtime = undefined;
}

export function global(name: string): string | undefined {
  const v = globals[name];
  return typeof v === "string" ? v : undefined;
}

export function globalFlag(name: string): boolean {
  return globals[name] === true;
}

export function getRuntime(): Runtime {
  return (runtime ??= new Runtime({
    root: global("root") ?? "/run/nexcage",
    ...(global("config") ? { configPath: global("config") as string } : {}),
    systemdCgroup: globalFlag("systemd-cgroup"),
    debug: globalFlag("debug"),
  }));
}

export { out } from "./output.ts";

/** A string flag as a string, or undefined (citty types every flag loosely). */
export function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

export function int(v: unknown, name: string): number {
  if (v === undefined || v === "") return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new NexcageError("usage", `invalid value ${JSON.stringify(v)} for --${name}: must be a non-negative integer`);
  return n;
}
