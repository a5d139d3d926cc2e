// src/core/store.ts StateStore: atomic records, sorted ids, per-container locks (in-process and cross-process).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ContainerRecord } from "../../src/backends/types.ts";
import { NexcageError } from "../../src/core/errors.ts";
import { StateStore } from "../../src/core/store.ts";

const STORE_MODULE = resolve(import.meta.dir, "../../src/core/store.ts");

let root: string;
let store: StateStore;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "nexcage-store-"));
  store = new StateStore(root);
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function rec(id: string, over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    backend: "crun",
    bundle: `/bundles/${id}`,
    rootfs: `/bundles/${id}/rootfs`,
    created: "2026-01-02T03:04:05.12Z",
    owner: "",
    annotations: { a: "b" },
    pid: 123,
    pidStartTime: 456,
    ...over,
  };
}

/** A child bun process running `body` with `store` (a StateStore on root) in scope. */
function child(body: string): Bun.Subprocess<"ignore", "pipe", "pipe"> {
  const code = `import { StateStore } from ${JSON.stringify(STORE_MODULE)};\nconst store = new StateStore(${JSON.stringify(root)});\n${body}\n`;
  return Bun.spawn({ cmd: [process.execPath, "-e", code], stdin: "ignore", stdout: "pipe", stderr: "pipe" });
}

async function childOutput(body: string): Promise<string> {
  const p = child(body);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`child failed (${code}): ${err}`);
  return out.trim();
}

/** Resolve once the child's stdout contains `marker`. */
async function waitForOutput(p: Bun.Subprocess<"ignore", "pipe", "pipe">, marker: string): Promise<void> {
  const reader = p.stdout.getReader();
  const dec = new TextDecoder();
  let seen = "";
  while (!seen.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before printing ${marker}: ${seen} ${await new Response(p.stderr).text()}`);
    seen += dec.decode(value);
  }
  reader.releaseLock();
}

describe("records", () => {
  test("write/read round trip", () => {
    const r = rec("c1", { creating: true, annotations: { x: "y", "org.nexcage.backend": "runc" }, backend: "runc" });
    store.write(r);
    expect(store.read("c1")).toEqual(r);
    expect(JSON.parse(readFileSync(join(root, "containers/c1/state.json"), "utf8"))).toEqual(r);
  });

  test("read of an unknown id is undefined", () => {
    expect(store.read("nope")).toBeUndefined();
  });

  test("write is atomic: no temp file left, overwrite replaces", () => {
    store.write(rec("c1", { pid: 1 }));
    store.write(rec("c1", { pid: 2 }));
    expect(readdirSync(join(root, "containers/c1"))).toEqual(["state.json"]);
    expect(store.read("c1")?.pid).toBe(2);
  });

  test("state.json is private (0600)", () => {
    store.write(rec("c1"));
    expect(statSync(join(root, "containers/c1/state.json")).mode & 0o777).toBe(0o600);
  });

  test("containerDir and backendRoot live under root", () => {
    expect(store.containerDir("c1")).toBe(`${root}/containers/c1`);
    expect(store.backendRoot("runc")).toBe(`${root}/runc`);
  });

  test("corrupt state.json (not JSON) → NexcageError mentioning corrupt", () => {
    mkdirSync(join(root, "containers/bad"), { recursive: true });
    writeFileSync(join(root, "containers/bad/state.json"), "{not json");
    let caught: unknown;
    try {
      store.read("bad");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(NexcageError);
    expect((caught as NexcageError).message).toContain("corrupt");
    expect((caught as NexcageError).message).toContain("bad");
  });

  test("state.json with the wrong shape → corrupt", () => {
    mkdirSync(join(root, "containers/bad"), { recursive: true });
    writeFileSync(join(root, "containers/bad/state.json"), JSON.stringify({ id: "bad", backend: "docker" }));
    expect(() => store.read("bad")).toThrow(/corrupt/);
  });

  test("empty state.json → corrupt", () => {
    mkdirSync(join(root, "containers/bad"), { recursive: true });
    writeFileSync(join(root, "containers/bad/state.json"), "");
    expect(() => store.read("bad")).toThrow(/corrupt/);
  });

  test("remove deletes the record and its directory", () => {
    store.write(rec("c1"));
    store.remove("c1");
    expect(store.read("c1")).toBeUndefined();
    expect(existsSync(join(root, "containers/c1"))).toBe(false);
    store.remove("c1"); // idempotent
    expect(store.ids()).toEqual([]);
  });

  test("ids() is sorted, [] when empty or when root does not exist", () => {
    expect(store.ids()).toEqual([]);
    expect(new StateStore(join(root, "does/not/exist")).ids()).toEqual([]);
    for (const id of ["web-2", "a", "db", "web-10"]) store.write(rec(id));
    expect(store.ids()).toEqual(["a", "db", "web-10", "web-2"]);
  });
});

describe("withLock (in-process)", () => {
  test("returns fn's value and creates the lock file", async () => {
    const v = await store.withLock("c1", async () => {
      expect(existsSync(join(root, "locks/c1.lock"))).toBe(true);
      return 42;
    });
    expect(v).toBe(42);
  });

  test("serialises concurrent sections for the same id (no interleaving)", async () => {
    const events: string[] = [];
    const section = (name: string) =>
      store.withLock("same", async () => {
        events.push(`${name}:enter`);
        await Bun.sleep(40);
        events.push(`${name}:exit`);
      });
    await Promise.all([section("a"), section("b"), section("c")]);
    expect(events).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) {
      const name = events[i]?.split(":")[0];
      expect(events[i]).toBe(`${name}:enter`);
      expect(events[i + 1]).toBe(`${name}:exit`);
    }
  });

  test("different ids run concurrently", async () => {
    const events: string[] = [];
    const section = (id: string) =>
      store.withLock(id, async () => {
        events.push(`${id}:enter`);
        await Bun.sleep(80);
        events.push(`${id}:exit`);
      });
    const t0 = performance.now();
    await Promise.all([section("one"), section("two")]);
    const took = performance.now() - t0;
    expect(events.slice(0, 2).sort()).toEqual(["one:enter", "two:enter"]);
    expect(took).toBeLessThan(150);
  });

  test("isLocked is false with no lock file and after the lock is released", async () => {
    expect(await store.isLocked("c1")).toBe(false);
    await store.withLock("c1", async () => {});
    expect(existsSync(join(root, "locks/c1.lock"))).toBe(true);
    expect(await store.isLocked("c1")).toBe(false);
  });

  test("isLocked is true while the lock is held (same process)", async () => {
    let inside: boolean | undefined;
    await store.withLock("c1", async () => {
      inside = await store.isLocked("c1");
    });
    expect(inside).toBe(true);
    expect(await store.isLocked("c1")).toBe(false);
  });

  test("the lock is released when fn throws, and the error propagates", async () => {
    const boom = new NexcageError("badState", "boom");
    await expect(store.withLock("c1", async () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await store.isLocked("c1")).toBe(false);
    // another process can take it right away
    expect(await childOutput(`console.log(await store.isLocked("c1"));`)).toBe("false");
    expect(await store.withLock("c1", async () => "again")).toBe("again");
  });

  test("removeAfter → true unlinks the lock file; false keeps it", async () => {
    await store.withLock("keep", async () => {}, { removeAfter: () => false });
    expect(existsSync(join(root, "locks/keep.lock"))).toBe(true);
    await store.withLock("gone", async () => {}, { removeAfter: () => true });
    expect(existsSync(join(root, "locks/gone.lock"))).toBe(false);
  });

  test("removeAfter is evaluated after fn, even when fn throws", async () => {
    let done = false;
    await expect(
      store.withLock(
        "x",
        async () => {
          done = true;
          throw new Error("fail");
        },
        { removeAfter: () => done },
      ),
    ).rejects.toThrow("fail");
    expect(existsSync(join(root, "locks/x.lock"))).toBe(false);
  });
});

describe("withLock (cross-process)", () => {
  test("waits while another process holds the lock", async () => {
    const released = join(root, "released");
    const p = child(`
      await store.withLock("shared", async () => {
        console.log("locked");
        await Bun.sleep(300);
        require("node:fs").writeFileSync(${JSON.stringify(released)}, "1");
      });
    `);
    await waitForOutput(p, "locked");
    expect(await store.isLocked("shared")).toBe(true);
    const t0 = performance.now();
    let sawRelease: boolean | undefined;
    await store.withLock("shared", async () => {
      sawRelease = existsSync(released);
    });
    const waited = performance.now() - t0;
    expect(sawRelease).toBe(true);
    expect(waited).toBeGreaterThan(150);
    expect(await p.exited).toBe(0);
    expect(await store.isLocked("shared")).toBe(false);
  });

  test("another process sees our lock (isLocked true), and not after release", async () => {
    await store.withLock("mine", async () => {
      expect(await childOutput(`console.log(await store.isLocked("mine"));`)).toBe("true");
    });
    expect(await childOutput(`console.log(await store.isLocked("mine"));`)).toBe("false");
  });

  test("a different id is not blocked by another process's lock", async () => {
    const p = child(`
      await store.withLock("held", async () => {
        console.log("locked");
        await Bun.sleep(400);
      });
    `);
    await waitForOutput(p, "locked");
    const t0 = performance.now();
    await store.withLock("free", async () => {});
    expect(performance.now() - t0).toBeLessThan(100);
    expect(await store.isLocked("held")).toBe(true);
    p.kill();
    await p.exited;
  });

  test("the lock stays held for another process while an overlapping same-id section still runs", async () => {
    let childSaw: string | undefined;
    const first = store.withLock("overlap", async () => {
      await Bun.sleep(30);
    });
    const second = store.withLock("overlap", async () => {
      await Bun.sleep(60); // still inside after `first` has finished
      childSaw = await childOutput(`console.log(await store.isLocked("overlap"));`);
    });
    await Promise.all([first, second]);
    expect(childSaw).toBe("true");
  });

  test("isLocked in the holding process does not release its lock", async () => {
    await store.withLock("probe", async () => {
      await store.isLocked("probe");
      expect(await childOutput(`console.log(await store.isLocked("probe"));`)).toBe("true");
    });
  });
});
