// src/oci/hooks.ts runHooks: real tiny shell scripts in a temp dir.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NexcageError } from "../../src/core/errors.ts";
import { runHooks } from "../../src/oci/hooks.ts";
import type { Hook } from "../../src/oci/spec.ts";
import { expectError, expectRejection } from "./expect-error.ts";

let dir: string;
const STATE = JSON.stringify({ ociVersion: "1.0.2", id: "c1", status: "creating", pid: 42, bundle: "/b", annotations: { a: "b" } });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nexcage-hooks-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** Write an executable /bin/sh script; the hook env is empty unless given, so use absolute paths. */
function script(body: string): string {
  const path = join(dir, `hook-${n++}.sh`);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

const out = (name: string) => join(dir, `${name}-${n++}.out`);

const hookError = (p: Promise<void>): Promise<NexcageError> => expectRejection(p, "hookFailed");

describe("runHooks", () => {
  test("the hook gets the state JSON on stdin", async () => {
    const f = out("stdin");
    await runHooks("prestart", { prestart: [{ path: script(`/bin/cat > ${f}`) }] }, STATE);
    expect(readFileSync(f, "utf8")).toBe(STATE);
  });

  test("args[0] is argv0, the rest are passed as arguments", async () => {
    const f = out("argv");
    const path = script(`for a in "$@"; do echo "$a"; done > ${f}`);
    await runHooks("createRuntime", { createRuntime: [{ path, args: ["custom-name", "one", "two words", "--flag"] }] }, STATE);
    expect(readFileSync(f, "utf8")).toBe("one\ntwo words\n--flag\n");
  });

  test("argv0 is what the hook sees as argv[0]", async () => {
    const f = out("argv0");
    // /proc/$$/cmdline of the shell shows the argv it was exec'd with
    const hook: Hook = { path: "/bin/sh", args: ["my-argv0", "-c", `/bin/cat /proc/$$/cmdline > ${f}`, "x"] };
    await runHooks("poststart", { poststart: [hook] }, STATE);
    expect(readFileSync(f, "utf8").split("\0").filter(Boolean)).toEqual(["my-argv0", "-c", `/bin/cat /proc/$$/cmdline > ${f}`, "x"]);
  });

  test("without args, the hook gets no arguments", async () => {
    const f = out("noargs");
    await runHooks("prestart", { prestart: [{ path: script(`echo "$#" > ${f}`) }] }, STATE);
    expect(readFileSync(f, "utf8")).toBe("0\n");
  });

  test("env is exactly the hook's env", async () => {
    const f = out("env");
    // /proc/$$/environ is the environment the shell was exec'd with (before it adds PWD etc.)
    const path = script(`/bin/cat /proc/$$/environ > ${f}`);
    await runHooks("createContainer", { createContainer: [{ path, env: ["A=1", "B=x=y", "EMPTY="] }] }, STATE);
    const env = readFileSync(f, "utf8").split("\0").filter(Boolean).sort();
    expect(env).toEqual(["A=1", "B=x=y", "EMPTY="]);
  });

  test("no env → an empty environment (nothing leaks from nexcage)", async () => {
    const f = out("noenv");
    await runHooks("startContainer", { startContainer: [{ path: script(`/bin/cat /proc/$$/environ > ${f}`) }] }, STATE);
    expect(readFileSync(f, "utf8")).toBe("");
  });

  test('an env entry without "=" is not mangled into another variable', async () => {
    const f = out("noeq");
    const path = script(`/bin/cat /proc/$$/environ > ${f}`);
    await runHooks("prestart", { prestart: [{ path, env: ["A=1", "NOEQ"] }] }, STATE);
    const env = readFileSync(f, "utf8").split("\0").filter(Boolean);
    expect(env).toContain("A=1");
    // runc hands the entry to execve as is (or it could be dropped); it must never become NOE=NOEQ
    expect(env.filter((e) => e !== "A=1" && e !== "NOEQ")).toEqual([]);
  });

  test("non-zero exit → hookFailed with the exit status and stderr's last line", async () => {
    const path = script(`echo "first line" >&2\necho "the real reason" >&2\nexit 3`);
    const err = await hookError(runHooks("prestart", { prestart: [{ path }] }, STATE));
    expect(err.message).toContain("prestart hook #0");
    expect(err.message).toContain(path);
    expect(err.message).toContain("exit status 3");
    expect(err.message).toContain("the real reason");
    expect(err.message).not.toContain("first line");
  });

  test("non-zero exit with no stderr", async () => {
    const err = await hookError(runHooks("poststop", { poststop: [{ path: script("exit 7") }] }, STATE));
    expect(err.message).toEndWith("exit status 7");
  });

  test("stdout of the hook is ignored, not mistaken for the error", async () => {
    const err = await hookError(runHooks("prestart", { prestart: [{ path: script(`echo "to stdout"\necho "to stderr" >&2\nexit 1`) }] }, STATE));
    expect(err.message).toContain("to stderr");
    expect(err.message).not.toContain("to stdout");
  });

  test("a lot of stderr output does not block the hook", async () => {
    const path = script(`i=0; while [ $i -lt 5000 ]; do echo "line $i ................................................" >&2; i=$((i+1)); done; echo "last" >&2; exit 2`);
    const err = await hookError(runHooks("prestart", { prestart: [{ path, timeout: 10 }] }, STATE));
    expect(err.message).toContain("exit status 2");
    expect(err.message).toEndWith("last");
  });

  test("timeout → hookFailed 'timed out'", async () => {
    const path = script("exec /bin/sleep 5");
    const t0 = performance.now();
    const err = await hookError(runHooks("createRuntime", { createRuntime: [{ path, timeout: 1 }] }, STATE));
    const took = performance.now() - t0;
    expect(err.message).toContain("timed out");
    expect(err.message).toContain("1s");
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
  });

  test("a hook that finishes within its timeout succeeds", async () => {
    const f = out("fast");
    await runHooks("prestart", { prestart: [{ path: script(`echo ok > ${f}`), timeout: 5 }] }, STATE);
    expect(readFileSync(f, "utf8")).toBe("ok\n");
  });

  test("a missing executable → hookFailed", async () => {
    const err = await hookError(runHooks("prestart", { prestart: [{ path: join(dir, "does-not-exist") }] }, STATE));
    expect(err.message).toContain("does-not-exist");
  });

  test("hooks of a phase run in order", async () => {
    const f = out("order");
    const hooks = ["1", "2", "3"].map((i) => ({ path: script(`/bin/sleep 0.0${4 - Number(i)}; echo ${i} >> ${f}`) }));
    await runHooks("poststart", { poststart: hooks }, STATE);
    expect(readFileSync(f, "utf8")).toBe("1\n2\n3\n");
  });

  test("a failing hook stops the phase; its index is in the message", async () => {
    const f = out("stop");
    const hooks = [{ path: script(`echo a >> ${f}`) }, { path: script("exit 1") }, { path: script(`echo c >> ${f}`) }];
    const err = await hookError(runHooks("createContainer", { createContainer: hooks }, STATE));
    expect(err.message).toContain("createContainer hook #1");
    expect(readFileSync(f, "utf8")).toBe("a\n");
  });

  test("only the requested phase runs; a missing phase is a no-op", async () => {
    const f = out("phase");
    const hooks = { prestart: [{ path: script(`echo pre >> ${f}`) }] };
    await expect(runHooks("poststop", hooks, STATE)).resolves.toBeUndefined();
    await expect(runHooks("poststart", undefined, STATE)).resolves.toBeUndefined();
    await expect(runHooks("startContainer", { startContainer: [] }, STATE)).resolves.toBeUndefined();
    expect(existsSync(f)).toBe(false);
  });
});
