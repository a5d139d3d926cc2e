// The sandbox server's rules without root: the real database, app, quota, auth, limits, files and exec code
// against a fake engine (test/unit/server-fake.ts). The same flows on real containers: test/e2e/api.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ServerDb, QuotaError } from "../../src/db/db.ts";
import { assemble } from "../../src/server/server.ts";
import { reapIdle } from "../../src/server/ttl.ts";
import { checkListen, parseListen } from "../../src/server/listen.ts";
import { parseSize } from "../../src/server/units.ts";
import { ensureRootfs } from "../fixtures/busybox.ts";
import { FakeEngine } from "./server-fake.ts";

const dir = mkdtempSync(join(tmpdir(), "nexcage-api-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** an images directory with one bundle image (the busybox rootfs) */
function imagesDir(): string {
  const images = join(dir, "images");
  if (!existsSync(join(images, "busybox"))) {
    mkdirSync(join(images, "busybox"), { recursive: true });
    Bun.spawnSync(["cp", "-a", ensureRootfs(), join(images, "busybox/rootfs")]);
    writeFileSync(join(images, "busybox/config.json"), JSON.stringify({ process: { args: ["sh"], env: ["PATH=/bin", "IMAGE=busybox"], cwd: "/" }, root: { path: "rootfs" } }));
  }
  return images;
}

async function setup(name: string, extra: Partial<Parameters<typeof assemble>[0]> = {}) {
  const data = join(dir, name);
  const engine = new FakeEngine();
  const said: string[] = [];
  const s = await assemble({
    dbPath: join(data, "server.db"),
    dataDir: data,
    imagesDir: imagesDir(),
    engine,
    health: async () => [{ backend: "fake", ok: true }],
    version: "test",
    say: (l) => said.push(l),
    capacity: { vcpus: 8, memory: 16 * 2 ** 30, disk: 100 * 2 ** 30 },
    ...extra,
  });
  const call = async (method: string, path: string, o: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.body !== undefined) headers["content-type"] = "application/json";
    const res = await s.app.fetch(new Request(`http://nexcage${path}`, { method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : o.raw !== undefined ? { body: o.raw } : {}) }));
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json, text, headers: res.headers };
  };
  return { ...s, engine, call, data, said };
}

describe("database", () => {
  test("migrations run once and record the schema version; reopening changes nothing", () => {
    const path = join(dir, "m/server.db");
    const a = new ServerDb(path);
    expect(a.schemaVersion).toBe(1);
    a.addTenant("acme");
    a.close();
    const b = new ServerDb(path);
    expect(b.schemaVersion).toBe(1);
    expect(b.tenants().map((t) => t.name)).toEqual(["acme"]);
    expect(b.db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    b.close();
  });

  test("a database from a newer nexcage is refused", () => {
    const path = join(dir, "newer/server.db");
    const a = new ServerDb(path);
    a.db.exec("PRAGMA user_version = 99");
    a.close();
    expect(() => new ServerDb(path)).toThrow(/schema version 99, newer than this nexcage knows/);
  });

  test("tokens: stored hashed, checked, revoked, expired", async () => {
    const db = new ServerDb(join(dir, "tok/server.db"));
    db.addTenant("acme");
    const t = db.createToken({ tenant: "acme" });
    expect(t.token).toMatch(/^nxc_[0-9a-f]{12}_[0-9a-f]{64}$/);
    const secret = t.token.split("_")[2] as string;
    db.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    expect(readFileSync(join(dir, "tok/server.db")).includes(Buffer.from(secret))).toBe(false);
    expect(db.authenticate(t.token)).toMatchObject({ ok: true, token: { tenant: "acme", admin: false } });
    expect(db.authenticate(t.token.slice(0, -1) + (t.token.endsWith("0") ? "1" : "0"))).toEqual({ ok: false, why: "invalid token" });
    expect(db.authenticate("nxc_zz")).toEqual({ ok: false, why: "malformed token" });
    db.revokeToken(t.id);
    expect(db.authenticate(t.token)).toEqual({ ok: false, why: "token revoked" });
    const short = db.createToken({ tenant: "acme", expiresInMs: 30 });
    await Bun.sleep(50);
    expect(db.authenticate(short.token)).toEqual({ ok: false, why: "token expired" });
    expect(() => db.createToken({})).toThrow(/--tenant NAME, or --admin/);
    expect(() => db.createToken({ tenant: "nobody" })).toThrow(/tenant nobody does not exist/);
    db.close();
  });

  test("quota reservation: per tenant and host-wide, checked and taken in one transaction, released by delete", () => {
    const db = new ServerDb(join(dir, "quota/server.db"));
    const t = db.addTenant("acme", { maxSandboxes: 3, maxMemory: 2 * 2 ** 30 });
    const host = { vcpus: 4, memory: null, disk: null };
    const r = (id: string, memory: number, vcpus = 1) => db.reserve({ id, tenantId: t.id, image: "i", bundle: "/b", vcpus, memory, disk: 0, pids: 100, request: {} }, host);
    r("a", 2 ** 30);
    r("b", 2 ** 30);
    const e1 = (() => {
      try {
        r("c", 1);
      } catch (e) {
        return e;
      }
    })() as QuotaError;
    expect(e1).toBeInstanceOf(QuotaError);
    expect(e1.message).toBe("tenant quota exceeded: memory: 2G used + 1B requested > 2G");
    expect(() => r("c", 0, 3)).toThrow("host capacity exceeded: vcpus: 2 used + 3 requested > 4");
    r("c", 0, 2);
    expect(() => r("d", 0, 0)).toThrow("tenant quota exceeded: sandboxes: 3 used + 1 requested > 3");
    expect(db.usage(t.id)).toEqual({ sandboxes: 3, vcpus: 4, memory: 2 * 2 ** 30, disk: 0, snapshots: 0 });
    db.releaseSandbox("a");
    expect(db.usage(t.id).sandboxes).toBe(2);
    r("d", 2 ** 30, 0);
    db.close();
  });
});

describe("units and listen addresses", () => {
  test("sizes", () => {
    expect(parseSize("512M")).toBe(512 * 2 ** 20);
    expect(parseSize("1.5G")).toBe(1.5 * 2 ** 30);
    expect(parseSize("4GiB")).toBe(4 * 2 ** 30);
    expect(parseSize("1024")).toBe(1024);
    expect(() => parseSize("lots", "--max-memory")).toThrow(/invalid --max-memory "lots"/);
  });

  test("plain TCP only on loopback (with a warning), TLS anywhere, otherwise refused unless --insecure", () => {
    expect(parseListen("unix:/run/x.sock")).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(parseListen("127.0.0.1:8080")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 8080 });
    expect(parseListen("[::1]:9")).toEqual({ kind: "tcp", host: "::1", port: 9 });
    expect(() => parseListen("unix:rel")).toThrow(/must be absolute/);
    expect(() => parseListen("host")).toThrow(/want unix:PATH or HOST:PORT/);
    expect(checkListen(parseListen("unix:/x"), false, false)).toBeUndefined();
    expect(checkListen(parseListen("127.0.0.1:1"), false, false)).toMatch(/^WARNING: serving plain HTTP on loopback/);
    expect(checkListen(parseListen("0.0.0.0:1"), true, false)).toBeUndefined();
    expect(() => checkListen(parseListen("0.0.0.0:1"), false, false)).toThrow(/refusing plain HTTP on 0.0.0.0:1/);
    expect(checkListen(parseListen("10.0.0.1:1"), false, true)).toMatch(/PLAIN HTTP/);
  });
});

describe("API over a fake engine", () => {
  let s: Awaited<ReturnType<typeof setup>>;
  let a: string, b: string, admin: string;
  beforeAll(async () => {
    s = await setup("api");
    s.db.addTenant("alpha", { maxSandboxes: 2, maxMemory: 2 ** 30, maxSnapshots: 1 });
    s.db.addTenant("beta");
    a = s.db.createToken({ tenant: "alpha" }).token;
    b = s.db.createToken({ tenant: "beta" }).token;
    admin = s.db.createToken({ admin: true }).token;
  });
  afterAll(() => s.db.close());

  test("every route but /healthz needs a valid token", async () => {
    expect((await s.call("GET", "/healthz")).json).toEqual({ ok: true });
    const none = await s.call("GET", "/v1/sandboxes");
    expect(none.status).toBe(401);
    expect(none.json.error.code).toBe("unauthorized");
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await s.call("GET", "/v1/sandboxes", { token: "nxc_000000000000_" + "0".repeat(64) })).status).toBe(401);
    expect((await s.call("GET", "/metrics", { token: a })).status).toBe(403);
    expect((await s.call("GET", "/metrics")).status).toBe(401);
  });

  test("create validates the body and names the field", async () => {
    const r1 = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", resources: { memory: "lots" } } });
    expect(r1.status).toBe(400);
    expect(r1.json.error).toMatchObject({ code: "invalidSpec" });
    expect(r1.json.error.message).toMatch(/^request body: resources\.memory/);
    const r2 = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", bogus: 1 } });
    expect(r2.status).toBe(400);
    expect(r2.json.error.message).toMatch(/bogus/);
    const r3 = await s.call("POST", "/v1/sandboxes", { token: a, raw: "{not json", headers: { "content-type": "application/json" } });
    expect(r3.status).toBe(400);
    expect(r3.json.error.code).toBe("badRequest");
    const r4 = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "../../etc" } });
    expect(r4.status).toBe(400);
    const r5 = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "nothere" } });
    expect(r5.status).toBe(404);
    expect(r5.json.error.message).toMatch(/image nothere does not exist/);
    const r6 = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", resources: { disk: "10G" } } });
    expect(r6.status).toBe(422);
    expect(r6.json.error.message).toMatch(/^resources\.disk: .*cannot enforce a disk limit/);
    // nothing of the refused creates holds quota
    expect(s.db.usage(s.db.tenant("alpha")!.id).sandboxes).toBe(0);
  });

  let sb: string;
  test("create: the reservation becomes real limits in the bundle; tenant quota enforced", async () => {
    const r = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", name: "one", resources: { vcpus: 0.5, memory: "256M", pids: 64 }, env: { FOO: "bar" }, ports: [{ container: 80, host: 8080 }], network: "isolated", backend: "crun" } });
    expect(r.status).toBe(201);
    sb = r.json.id;
    expect(r.json).toMatchObject({ name: "one", tenant: "alpha", state: "running", backend: "crun", resources: { vcpus: 0.5, memory: 256 * 2 ** 20, pids: 64 } });
    const spec = JSON.parse(readFileSync(join(s.data, "sandboxes", sb, "config.json"), "utf8"));
    expect(spec.linux.resources.memory).toEqual({ limit: 256 * 2 ** 20, swap: 256 * 2 ** 20 });
    expect(spec.linux.resources.cpu).toEqual({ quota: 50000, period: 100000 });
    expect(spec.linux.resources.pids).toEqual({ limit: 64 });
    expect(spec.process.env).toContain("FOO=bar");
    expect(spec.process.env).toContain("IMAGE=busybox");
    expect(spec.annotations).toMatchObject({ "org.nexcage.sandbox": sb, "org.nexcage.sandbox.tenant": "alpha", "org.nexcage.backend": "crun", "org.nexcage.network": "isolated", "org.nexcage.ports": "8080:80/tcp" });
    expect(spec.process.args).toEqual(["/dev/.nexcage-init/busybox", "sleep", "infinity"]);
    // memory quota 1G: 256M + 1G does not fit
    const over = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", resources: { memory: "1G" } } });
    expect(over.status).toBe(403);
    expect(over.json.error.code).toBe("quotaExceeded");
    expect(over.json.error.message).toBe("tenant quota exceeded: memory: 256M used + 1G requested > 1G");
    expect((await s.call("GET", "/v1/usage", { token: a })).json.usage).toMatchObject({ sandboxes: 1, memory: 256 * 2 ** 20 });
  });

  test("a failed engine create leaves no bundle and no reservation", async () => {
    const { NexcageError } = await import("../../src/core/errors.ts");
    s.engine.failLaunch = new NexcageError("unsupported", "backend microvm is not available in this build");
    const r = await s.call("POST", "/v1/sandboxes", { token: b, body: { image: "busybox" } });
    expect(r.status).toBe(422);
    expect(r.json.error).toEqual({ code: "unsupported", message: "backend microvm is not available in this build", exitCode: 8 });
    expect(s.db.sandboxes(s.db.tenant("beta")!.id)).toEqual([]);
    const dirs = Bun.spawnSync(["ls", join(s.data, "sandboxes")]).stdout.toString().trim().split("\n");
    expect(dirs).toEqual([sb]);
  });

  test("a tenant never sees or touches another tenant's sandbox", async () => {
    expect((await s.call("GET", "/v1/sandboxes", { token: b })).json.sandboxes).toEqual([]);
    for (const [m, p] of [
      ["GET", `/v1/sandboxes/${sb}`],
      ["DELETE", `/v1/sandboxes/${sb}`],
      ["POST", `/v1/sandboxes/${sb}/pause`],
      ["GET", `/v1/sandboxes/${sb}/files?path=/`],
      ["GET", `/v1/sandboxes/${sb}/files/content?path=/etc/passwd`],
      ["GET", `/v1/sandboxes/${sb}/snapshots`],
      ["GET", `/v1/sandboxes/${sb}/stats`],
    ] as const) {
      const r = await s.call(m, p, { token: b });
      expect(r.status).toBe(404);
      expect(r.json.error.message).toBe(`sandbox ${sb} does not exist`);
    }
    const ex = await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: b, body: { command: ["true"] } });
    expect(ex.status).toBe(404);
    const snap = await s.call("POST", "/v1/sandboxes", { token: b, body: { fromSnapshot: { sandbox: sb, snapshot: "x" } } });
    expect(snap.status).toBe(404);
    const admins = await s.call("POST", "/v1/sandboxes", { token: b, body: { image: "busybox", tenant: "alpha" } });
    expect(admins.status).toBe(403);
    // the admin sees everyone's
    expect((await s.call("GET", "/v1/sandboxes", { token: admin })).json.sandboxes.map((x: { id: string }) => x.id)).toEqual([sb]);
    expect((await s.call("GET", `/v1/sandboxes/${sb}`, { token: a })).json.id).toBe(sb);
  });

  test("files: upload, list, download, confined to the root", async () => {
    const put = await s.call("PUT", `/v1/sandboxes/${sb}/files/content?path=/work/dir/hello.txt&mode=0600`, { token: a, raw: "hello\n" });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ name: "hello.txt", type: "file", size: 6, mode: 0o600 });
    const rootfs = join(s.data, "sandboxes", sb, "rootfs");
    expect(readFileSync(join(rootfs, "work/dir/hello.txt"), "utf8")).toBe("hello\n");
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files/content?path=/work/dir/hello.txt`, { token: a })).text).toBe("hello\n");
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files?path=/work/dir`, { token: a })).json.entries.map((e: { name: string }) => e.name)).toEqual(["hello.txt"]);
    // a symlink to / and one to a host path: both resolve inside the sandbox
    symlinkSync("/", join(rootfs, "work/up"));
    symlinkSync("/etc/passwd", join(rootfs, "work/passwd"));
    writeFileSync(join(rootfs, "etc/passwd"), "sandbox passwd\n");
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files/content?path=/work/passwd`, { token: a })).text).toBe("sandbox passwd\n");
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files/content?path=/work/up/../../../etc/passwd`, { token: a })).text).toBe("sandbox passwd\n");
    const w = await s.call("PUT", `/v1/sandboxes/${sb}/files/content?path=/work/up/tmp/escape`, { token: a, raw: "x" });
    expect(w.status).toBe(201);
    expect(existsSync(join(rootfs, "tmp/escape"))).toBe(true);
    expect(existsSync("/tmp/escape")).toBe(false);
    // what lies under the sandbox's own mounts is not its files
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files?path=/proc`, { token: a })).status).toBe(400);
    // a FIFO is not read (it would hang the server)
    Bun.spawnSync(["mkfifo", join(rootfs, "work/fifo")]);
    const f = await s.call("GET", `/v1/sandboxes/${sb}/files/content?path=/work/fifo`, { token: a });
    expect(f.status).toBe(400);
    expect(f.json.error.message).toMatch(/not a regular file/);
    rmSync(join(rootfs, "work/fifo"));
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files/content?path=/nope`, { token: a })).status).toBe(404);
    expect((await s.call("DELETE", `/v1/sandboxes/${sb}/files?path=/work/dir/hello.txt`, { token: a })).status).toBe(204);
    expect(existsSync(join(rootfs, "work/dir/hello.txt"))).toBe(false);
    expect((await s.call("GET", `/v1/sandboxes/${sb}/files/content`, { token: a })).status).toBe(400);
  });

  test("the open walk never follows a symlink (one swapped in after resolution is refused)", async () => {
    const { openDir } = await import("../../src/server/files.ts");
    const rootfs = join(s.data, "sandboxes", sb, "rootfs");
    const outside = mkdtempSync(join(tmpdir(), "nexcage-outside-"));
    // what a sandbox could do between resolveInRoot and the open: a directory becomes a symlink out
    symlinkSync(outside, join(rootfs, "race"));
    expect(() => openDir(rootfs, ["race"], "/race/x", true)).toThrow("/race/x: changed into a symbolic link while being opened; try again");
    expect(() => openDir(rootfs, ["race", "sub"], "/race/sub/x", true)).toThrow(/changed into a symbolic link/);
    expect(existsSync(join(outside, "sub"))).toBe(false);
    rmSync(outside, { recursive: true, force: true });
  });

  test("exec streams stdout, stderr and the exit code as NDJSON; stdin is given; a timeout kills", async () => {
    const r = await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: a, body: { command: ["sh", "-c", "cat; echo oops >&2; exit 7"], stdin: "in-data" } });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/x-ndjson");
    const events = r.text.trim().split("\n").map((l) => JSON.parse(l));
    expect(events.filter((e) => e.type === "stdout").map((e) => e.data).join("")).toBe("in-data");
    expect(events.filter((e) => e.type === "stderr").map((e) => e.data).join("")).toBe("oops\n");
    expect(events.at(-1)).toMatchObject({ type: "exit", code: 7 });
    const b64 = await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: a, body: { command: ["printf", "\\377\\376"], encoding: "base64" } });
    expect(JSON.parse(b64.text.split("\n")[0] as string)).toEqual({ type: "stdout", data: Buffer.from([0xff, 0xfe]).toString("base64") });
    const t0 = Date.now();
    const slow = await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: a, body: { command: ["sleep", "30"], timeout: 0.3 } });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(JSON.parse(slow.text.trim().split("\n").at(-1) as string)).toMatchObject({ type: "exit", timedOut: true });
  });

  test("exec over a WebSocket: stdin streamed in, events out, exit code, then closed", async () => {
    const { bunHandlers } = await import("../../src/server/server.ts");
    const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, ...bunHandlers(s.app, 1 << 20) });
    try {
      const got: any[] = [];
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/v1/sandboxes/${sb}/exec/ws`, { headers: { authorization: `Bearer ${a}` } } as never);
      const closed = new Promise<number>((resolve) => ws.addEventListener("close", (e) => resolve(e.code)));
      ws.addEventListener("message", (e) => got.push(JSON.parse(String(e.data))));
      await new Promise((r) => ws.addEventListener("open", r));
      ws.send(JSON.stringify({ command: ["sh", "-c", "read a; echo got $a; read b; echo then $b; exit 5"] }));
      await Bun.sleep(100);
      ws.send(new TextEncoder().encode("one\n"));
      await Bun.sleep(100);
      ws.send(JSON.stringify({ type: "stdin", data: "two\n" }));
      ws.send(JSON.stringify({ type: "eof" }));
      expect(await closed).toBe(1000);
      expect(got.filter((e) => e.type === "stdout").map((e) => e.data).join("")).toBe("got one\nthen two\n");
      expect(got.at(-1)).toMatchObject({ type: "exit", code: 5 });
      // another tenant cannot even upgrade
      const r = await fetch(`http://127.0.0.1:${srv.port}/v1/sandboxes/${sb}/exec/ws`, { headers: { authorization: `Bearer ${b}`, upgrade: "websocket", connection: "upgrade", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" } });
      expect(r.status).toBe(404);
      expect(s.db.auditLog().some((e) => e.action === "WS /v1/sandboxes/:id/exec/ws" && e.target === sb)).toBe(true);
    } finally {
      srv.stop(true);
    }
  });

  test("exec in the background: output and exit code kept for later", async () => {
    const r = await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: a, body: { command: ["sh", "-c", "echo out; echo err >&2; exit 3"], background: true } });
    expect(r.status).toBe(202);
    const id = r.json.id;
    let info: any;
    for (let i = 0; i < 100; i++) {
      info = (await s.call("GET", `/v1/sandboxes/${sb}/execs/${id}`, { token: a })).json;
      if (!info.running) break;
      await Bun.sleep(20);
    }
    expect(info).toMatchObject({ id, running: false, exitCode: 3, stdoutBytes: 4, stderrBytes: 4 });
    const out = await s.call("GET", `/v1/sandboxes/${sb}/execs/${id}/stdout?offset=1`, { token: a });
    expect(out.text).toBe("ut\n");
    expect(out.headers.get("x-next-offset")).toBe("4");
    expect((await s.call("GET", `/v1/sandboxes/${sb}/execs/${id}`, { token: b })).status).toBe(404);
  });

  test("snapshots: quota counted, new sandbox from a snapshot, restore", async () => {
    await s.call("PUT", `/v1/sandboxes/${sb}/files/content?path=/data.txt`, { token: a, raw: "v1" });
    const c = await s.call("POST", `/v1/sandboxes/${sb}/snapshots`, { token: a, body: { name: "one" } });
    expect(c.status).toBe(201);
    expect(c.json.name).toBe("one");
    const over = await s.call("POST", `/v1/sandboxes/${sb}/snapshots`, { token: a, body: { name: "two" } });
    expect(over.status).toBe(403);
    expect(over.json.error.message).toBe("tenant quota exceeded: snapshots: 1 used + 1 requested > 1");
    await s.call("PUT", `/v1/sandboxes/${sb}/files/content?path=/data.txt`, { token: a, raw: "v2" });
    const fresh = await s.call("POST", "/v1/sandboxes", { token: a, body: { fromSnapshot: { sandbox: sb, snapshot: "one" } } });
    expect(fresh.status).toBe(201);
    expect(readFileSync(join(s.data, "sandboxes", fresh.json.id, "rootfs/data.txt"), "utf8")).toBe("v1");
    const rs = await s.call("POST", `/v1/sandboxes/${sb}/snapshots/one/restore`, { token: a });
    expect(rs.json).toEqual({ restarted: true });
    expect(readFileSync(join(s.data, "sandboxes", sb, "rootfs/data.txt"), "utf8")).toBe("v1");
    expect((await s.call("POST", `/v1/sandboxes/${sb}/snapshots/one/verify`, { token: a })).json).toEqual({ ok: true, differences: [] });
    expect((await s.call("DELETE", `/v1/sandboxes/${sb}/snapshots/one`, { token: a })).status).toBe(204);
    expect(s.db.usage(s.db.tenant("alpha")!.id).snapshots).toBe(0);
    // alpha's quota is 2 sandboxes: sb and fresh
    const third = await s.call("POST", "/v1/sandboxes", { token: a, body: { image: "busybox", resources: { memory: "16M" } } });
    expect(third.json.error.message).toBe("tenant quota exceeded: sandboxes: 2 used + 1 requested > 2");
    expect((await s.call("DELETE", `/v1/sandboxes/${fresh.json.id}`, { token: a })).status).toBe(204);
    expect(existsSync(join(s.data, "sandboxes", fresh.json.id))).toBe(false);
  });

  test("pause, resume, stop, start; wrong states are 409 with the engine's code", async () => {
    expect((await s.call("POST", `/v1/sandboxes/${sb}/pause`, { token: a })).json.state).toBe("paused");
    const again = await s.call("POST", `/v1/sandboxes/${sb}/pause`, { token: a });
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: "badState", exitCode: 5 });
    expect((await s.call("POST", `/v1/sandboxes/${sb}/exec`, { token: a, body: { command: ["true"] } })).status).toBe(409);
    expect((await s.call("POST", `/v1/sandboxes/${sb}/resume`, { token: a })).json.state).toBe("running");
    expect((await s.call("POST", `/v1/sandboxes/${sb}/stop`, { token: a })).json.state).toBe("stopped");
    expect((await s.call("POST", `/v1/sandboxes/${sb}/start`, { token: a })).json.state).toBe("running");
  });

  test("idle TTL stops a sandbox nobody touched; snapshot-stop keeps a snapshot", async () => {
    const r = await s.call("POST", "/v1/sandboxes", { token: b, body: { image: "busybox", ttl: { idleSeconds: 10, action: "snapshot-stop" } } });
    expect(r.json.ttl).toMatchObject({ idleSeconds: 10, action: "snapshot-stop" });
    expect(await reapIdle(s.sandboxes, Date.now() + 5_000)).toEqual([]);
    const ext = await s.call("POST", `/v1/sandboxes/${r.json.id}/ttl`, { token: b, body: { idleSeconds: 60 } });
    expect(ext.json.ttl.idleSeconds).toBe(60);
    expect(await reapIdle(s.sandboxes, Date.now() + 61_000)).toEqual([r.json.id]);
    const after = (await s.call("GET", `/v1/sandboxes/${r.json.id}`, { token: b })).json;
    expect(after.state).toBe("stopped");
    const snaps = (await s.call("GET", `/v1/sandboxes/${r.json.id}/snapshots`, { token: b })).json.snapshots;
    expect(snaps.map((x: { name: string }) => x.name)[0]).toMatch(/^ttl-/);
    expect(s.db.usage(s.db.tenant("beta")!.id).snapshots).toBe(1);
    await s.call("DELETE", `/v1/sandboxes/${r.json.id}`, { token: b });
    expect(s.db.usage(s.db.tenant("beta")!.id)).toMatchObject({ sandboxes: 0, snapshots: 0 });
  });

  test("every mutating call is audited: who, what, result, and never a token", async () => {
    const rows = s.db.auditLog({ limit: 1000 });
    expect(rows.some((r) => r.action === "POST /v1/sandboxes" && r.tenant === "alpha" && r.result === "quotaExceeded" && r.status === 403)).toBe(true);
    expect(rows.some((r) => r.action === "DELETE /v1/sandboxes/:id" && r.result === "ok" && r.status === 204)).toBe(true);
    const text = JSON.stringify(rows);
    for (const t of [a, b, admin]) expect(text.includes((t.split("_")[2] as string).slice(0, 16))).toBe(false);
    const api = await s.call("GET", "/v1/audit?tenant=beta", { token: admin });
    expect(api.json.entries.every((e: { tenant: string }) => e.tenant === "beta")).toBe(true);
    expect((await s.call("GET", "/v1/audit", { token: a })).status).toBe(403);
  });

  test("metrics and the OpenAPI document", async () => {
    const m = await s.call("GET", "/metrics", { token: admin });
    expect(m.status).toBe(200);
    expect(m.text).toContain(`nexcage_sandboxes{state="running",backend="crun"} 1`);
    expect(m.text).toContain(`nexcage_quota_usage{tenant="alpha",resource="memory"} ${256 * 2 ** 20}`);
    expect(m.text).toContain(`nexcage_quota_limit{tenant="alpha",resource="sandboxes"} 2`);
    expect(m.text).toMatch(/nexcage_http_requests_total\{method="POST",route="\/v1\/sandboxes",status="201"\} \d+/);
    expect(m.text).toContain("nexcage_sandbox_create_duration_seconds_bucket");
    expect(m.text).toContain("nexcage_exec_duration_seconds_count");
    const doc = (await s.call("GET", "/v1/openapi.json", { token: a })).json;
    expect(doc.openapi).toBe("3.0.3");
    expect(Object.keys(doc.paths)).toContain("/v1/sandboxes/{id}/exec");
    const create = doc.paths["/v1/sandboxes"].post.requestBody.content["application/json"].schema;
    expect(Object.keys(create.properties)).toEqual(expect.arrayContaining(["image", "fromSnapshot", "resources", "ttl", "ports", "network"]));
    expect(create.additionalProperties).toBe(false);
  });

  test("request size, rate and concurrency limits answer 413 and 429", async () => {
    const big = await s.call("POST", "/v1/sandboxes", { token: a, raw: JSON.stringify({ image: "x".repeat(2 << 20) }), headers: { "content-type": "application/json" } });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe("payloadTooLarge");
    const t = await setup("limits", { limits: { rate: 1, burst: 3, concurrent: 1 } });
    t.db.addTenant("gamma");
    const g = t.db.createToken({ tenant: "gamma" }).token;
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await t.call("GET", "/v1/sandboxes", { token: g })).status);
    expect(codes).toEqual([200, 200, 200, 429, 429]);
    const limited = await t.call("GET", "/v1/sandboxes", { token: g });
    expect(limited.json.error.code).toBe("rateLimited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // one operation at a time per tenant (another tenant, with its own bucket): the second is refused while
    // the first streams, and accepted once it ended
    t.db.addTenant("delta");
    const d = t.db.createToken({ tenant: "delta" }).token;
    const sbx = (await t.call("POST", "/v1/sandboxes", { token: d, body: { image: "busybox" } })).json.id;
    const res1 = await t.app.fetch(new Request(`http://x/v1/sandboxes/${sbx}/exec`, { method: "POST", headers: { authorization: `Bearer ${d}`, "content-type": "application/json" }, body: JSON.stringify({ command: ["sleep", "0.3"] }) }));
    const second = await t.call("POST", `/v1/sandboxes/${sbx}/exec`, { token: d, body: { command: ["true"] } });
    expect(second.status).toBe(429);
    expect(second.json.error.code).toBe("tooManyOperations");
    await res1.text();
    await Bun.sleep(1100);
    expect((await t.call("POST", `/v1/sandboxes/${sbx}/exec`, { token: d, body: { command: ["true"] } })).status).toBe(200);
    t.db.close();
  });
});

describe("reconcile after a crash", () => {
  test("a half-made create and a half-done delete are undone, orphans removed, quota released", async () => {
    const first = await setup("crash");
    first.db.addTenant("acme");
    const tok = first.db.createToken({ tenant: "acme" }).token;
    const ok = (await first.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox" } })).json.id as string;
    // as a SIGKILL mid-create would leave it: a `creating` row, a bundle, a container
    const t = first.db.tenant("acme")!;
    first.db.reserve({ id: "sb-crashedcreat", tenantId: t.id, image: "busybox", bundle: join(first.data, "sandboxes/sb-crashedcreat"), vcpus: 1, memory: 1, disk: 1, pids: 1, request: {} }, { vcpus: null, memory: null, disk: null });
    mkdirSync(join(first.data, "sandboxes/sb-crashedcreat/rootfs"), { recursive: true });
    first.engine.containers.set("sb-crashedcreat", { status: "created", bundle: "", annotations: {} });
    // an orphan: a container of this database with no row, and a bundle directory with no row
    first.engine.containers.set("sb-orphanorphan", { status: "running", bundle: "", annotations: { "org.nexcage.sandbox.db": first.db.path } });
    first.engine.containers.set("not-ours", { status: "running", bundle: "", annotations: {} });
    mkdirSync(join(first.data, "sandboxes/sb-strayystrayy"), { recursive: true });
    first.db.close();
    // the server starts again with the same engine state
    const again = await assemble({ dbPath: join(first.data, "server.db"), dataDir: first.data, imagesDir: imagesDir(), engine: first.engine, health: async () => [], version: "t", say: () => {} });
    expect(again.reconciled.releasedCreating).toEqual(["sb-crashedcreat"]);
    expect(again.reconciled.orphanContainers).toEqual(["sb-orphanorphan"]);
    expect(again.reconciled.orphanBundles).toEqual(["sb-strayystrayy"]);
    expect([...first.engine.containers.keys()].sort()).toEqual(["not-ours", ok].sort());
    expect(again.db.usage(t.id).sandboxes).toBe(1);
    expect(existsSync(join(first.data, "sandboxes/sb-crashedcreat"))).toBe(false);
    // a container that vanished (host reboot) with its files kept: stopped, startable
    first.engine.containers.delete(ok);
    again.db.close();
    const third = await assemble({ dbPath: join(first.data, "server.db"), dataDir: first.data, imagesDir: imagesDir(), engine: first.engine, health: async () => [], version: "t", say: () => {} });
    expect(third.reconciled.markedStopped).toEqual([ok]);
    expect(third.db.sandbox(ok)?.state).toBe("stopped");
    expect(third.db.auditLog().some((e) => e.action === "reconcile" && e.target === "sb-crashedcreat")).toBe(true);
    third.db.close();
  });
});
