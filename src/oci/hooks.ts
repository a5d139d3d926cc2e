// OCI hooks for backends that do not run them themselves (crun and runc do): each hook gets the state
// JSON on stdin, its own args/env, and is killed when its timeout (seconds) passes. A failing hook is an
// error of class hookFailed; the caller rolls the container back.
import type { Hook, Hooks } from "./spec.ts";
import { NexcageError } from "../core/errors.ts";

export type HookPhase = keyof Hooks & ("prestart" | "createRuntime" | "createContainer" | "startContainer" | "poststart" | "poststop");

export async function runHooks(phase: HookPhase, hooks: Hooks | undefined, state: string): Promise<void> {
  for (const [i, hook] of (hooks?.[phase] ?? []).entries()) await runHook(phase, i, hook, state);
}

async function runHook(phase: string, index: number, hook: Hook, state: string): Promise<void> {
  const [argv0, ...rest] = hook.args?.length ? hook.args : [hook.path];
  const what = `${phase} hook #${index} (${hook.path})`;
  let proc: Bun.Subprocess<Uint8Array, "ignore", "pipe">;
  try {
    proc = Bun.spawn({
      cmd: [hook.path, ...rest],
      argv0: argv0 ?? hook.path,
      // entries are validated as KEY=value (oci/spec.ts); one without "=" can't be expressed here and is dropped
      env: Object.fromEntries((hook.env ?? []).filter((e) => e.includes("=")).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
      stdin: new TextEncoder().encode(state),
      stdout: "ignore",
      stderr: "pipe",
    }) as Bun.Subprocess<Uint8Array, "ignore", "pipe">;
  } catch (e) {
    throw new NexcageError("hookFailed", `${what}: ${(e as Error).message}`);
  }
  let timedOut = false;
  const timer = hook.timeout
    ? setTimeout(() => {
        timedOut = true;
        proc.kill(9);
      }, hook.timeout * 1000)
    : undefined;
  const code = await proc.exited;
  if (timer) clearTimeout(timer);
  if (timedOut) throw new NexcageError("hookFailed", `${what}: timed out after ${hook.timeout}s`);
  if (code !== 0) {
    const err = (await new Response(proc.stderr).text()).trim().split("\n").pop() ?? "";
    throw new NexcageError("hookFailed", `${what}: exit status ${code}${err ? `: ${err}` : ""}`);
  }
}
