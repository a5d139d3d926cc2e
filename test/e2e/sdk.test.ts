// The library entry ops scripts use: `import { Runtime } from "nexcage"` drives the same engine in-process.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NexcageError, parseConfig, Runtime } from "nexcage";
import { makeBundle } from "../fixtures/busybox.ts";
import { hostSetup, pidAlive } from "./helpers.ts";

const root = mkdtempSync(join(tmpdir(), "nexcage-sdk-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

test.each(["crun", "runc"] as const)("Runtime drives a container on %s in-process", async (backend) => {
  hostSetup();
  const rt = new Runtime({ root, config: parseConfig({ defaultBackend: backend }, "test") });
  const b = makeBundle({ args: ["sleep", "1000"] });
  const id = `sdk-${backend}`;
  try {
    const rec = await rt.create({ id, bundle: b.dir });
    expect(rec.backend).toBe(backend);
    expect((await rt.state(id)).status).toBe("created");
    await rt.start(id);
    expect((await rt.state(id)).status).toBe("running");
    expect(await rt.ps(id)).toContain(rec.pid);
    expect((await rt.list()).map((s) => s.id)).toContain(id);
    await rt.kill(id, 9);
    for (let i = 0; i < 100 && (await rt.state(id)).status !== "stopped"; i++) await Bun.sleep(10);
    expect((await rt.state(id)).status).toBe("stopped");
    expect(pidAlive(rec.pid)).toBe(false);
    await rt.delete(id);
    const err = await rt.state(id).catch((e) => e);
    expect(err).toBeInstanceOf(NexcageError);
    expect((err as NexcageError).code).toBe("notFound");
  } finally {
    await rt.delete(id, true);
    b.cleanup();
  }
});
