// `state ID` with nothing but global flags is what conmon and go-runc call over and over: answer it without
// loading citty, the spec schemas or the engine (≈1.7 ms of a 6.4 ms call). Anything else returns
// undefined and goes through the full CLI.
import { splitGlobal } from "./argv.ts";
import { applyLogFlags, out, reportError } from "./output.ts";
import { backendContext, queryState } from "../core/query.ts";
import { DEFAULT_ROOT, StateStore } from "../core/store.ts";

export async function fastPath(argv: string[]): Promise<number | undefined> {
  let split: ReturnType<typeof splitGlobal>;
  try {
    split = splitGlobal(argv);
  } catch {
    return undefined; // the full CLI reports usage errors
  }
  const { globals: g, verb, rest } = split;
  if (verb !== "state" || rest.length !== 1 || rest[0]?.startsWith("-") || g.help || g.version) return undefined;
  try {
    applyLogFlags(g);
  } catch {
    return undefined; // the full CLI reports the bad flag
  }
  try {
    const store = new StateStore(typeof g.root === "string" ? g.root : DEFAULT_ROOT);
    const opts = { systemdCgroup: g["systemd-cgroup"] === true, debug: g.debug === true };
    const st = await queryState(store, rest[0] as string, (b) => backendContext(store, b, opts));
    out(JSON.stringify(st, null, 2)); // runc: two-space indent, no trailing newline
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
