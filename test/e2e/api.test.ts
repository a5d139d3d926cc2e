// The sandbox API end to end: the built binary's `nexcage serve` on a Unix socket, real containers on crun and
// lxc, images unpacked by umoci/skopeo, tenants and tokens made with the CLI against the same database. An
// agent's flow per backend (create, upload, exec streaming, snapshot, restore into a new sandbox, delete) under
// quotas; limits enforced by the kernel; tenant isolation; auth; a SIGKILL of the server at each dangerous
// instant of a create, then a restart that leaves nothing behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ociArchive } from "../fixtures/busybox.ts";
import { BIN, hostSetup, runtimeFor } from "./helpers.ts";

hostSetup();

export interface ApiServer {
  sock: string;
  db: string;
  data: string;
  rt: ReturnType<typeof runtimeFor>;
  logFile: string;
  proc?: ReturnType<typeof Bun.spawn>;
  start(env?: Record<string, string>, extra?: string[]): Promise<void>;
  stop(): Promise<void>;
  cli(args: string[]): { code: number; stdout: string; stderr: string };
  call(method: string, path: string, o?: { token?: string; body?: unknown; raw?: string }): Promise<{ status: number; json: any; text: string; headers: Headers }>;
}

/** images every test server offers: the busybox rootfs as an OCI archive and as an OCI layout directory */
function images(dir: string): string {
  const d = join(dir, "images");
  if (existsSync(join(d, "busybox-layout/index.json"))) return d;
  mkdirSync(join(d, "busybox-layout"), { recursive: true });
  ociArchive(join(d, "busybox.tar"));
  Bun.spawnSync(["tar", "-xf", join(d, "busybox.tar"), "-C", join(d, "busybox-layout")]);
  return d;
}

export function apiServer(backend: string, o: { data?: string } = {}): ApiServer {
  const rt = runtimeFor(backend);
  const data = o.data ?? join(rt.dir, "server");
  const spawned: ReturnType<typeof Bun.spawn>[] = [];
  const spawn = (...a: Parameters<typeof Bun.spawn>) => {
    const p = Bun.spawn(...a);
    spawned.push(p);
    return p;
  };
  const s: ApiServer = {
    sock: join(rt.dir, "api.sock"),
    db: join(rt.dir, "server.db"),
    data,
    rt,
    logFile: join(rt.dir, "serve.log"),
    async start(env = {}, extra = []) {
      await this.stop();
      // stdout/stderr to a file: the sandboxes' inits inherit the server's stdio, and a pipe would stay open
      this.proc = spawn([...rt.argv, "serve", "--listen", `unix:${this.sock}`, "--db", this.db, "--data", data, "--images", images(rt.dir), ...extra], {
        stdin: "ignore",
        stdout: Bun.file(this.logFile),
        stderr: Bun.file(`${this.logFile}.err`),
        env: { ...process.env, ...env },
      });
      for (let i = 0; i < 500; i++) {
        if (existsSync(this.sock)) {
          try {
            if ((await fetch("http://localhost/healthz", { unix: this.sock })).ok) return;
          } catch {}
        }
        if (this.proc.exitCode !== null) break;
        await Bun.sleep(20);
      }
      throw new Error(`serve did not come up: ${readFileSync(`${this.logFile}.err`, "utf8")}`);
    },
    async stop() {
      // every server this harness started goes, whatever state a failed test left it in
      for (const p of spawned) {
        if (p.exitCode !== null || p.signalCode !== null) continue;
        p.kill("SIGTERM");
        if ((await Promise.race([p.exited.then(() => true), Bun.sleep(10_000).then(() => false)])) === false) p.kill("SIGKILL");
        await p.exited;
      }
    },
    cli(args) {
      const r = Bun.spawnSync([BIN, ...args, "--db", this.db], { stdout: "pipe", stderr: "pipe" });
      return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    },
    async call(method, path, o = {}) {
      const headers: Record<string, string> = {};
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.body !== undefined) headers["content-type"] = "application/json";
      const res = await fetch(`http://localhost${path}`, { unix: this.sock, method, headers, ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : o.raw !== undefined ? { body: o.raw } : {}) });
      const text = await res.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: res.status, json, text, headers: res.headers };
    },
  };
  return s;
}

/** a status, with the error body in the failure message when it is another one */
function expectStatus(r: { status: number; text: string }, status: number): void {
  if (r.status !== status) throw new Error(`expected HTTP ${status}, got ${r.status}: ${r.text}`);
}

/** the NDJSON events of a streamed exec */
export function events(text: string): { type: string; data?: string; code?: number }[] {
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
const stdout = (text: string) => events(text).filter((e) => e.type === "stdout").map((e) => e.data).join("");
const exitOf = (text: string) => events(text).at(-1);

/** containers of the runtime (its own view, through the CLI) */
function containers(s: ApiServer): string[] {
  const r = s.rt.nx(["list", "--format", "json"]);
  return ((JSON.parse(r.stdout || "null") as { id: string }[] | null) ?? []).map((c) => c.id);
}

/** the cgroup v1 (or v2) file of a running container's init */
function cgroupFile(s: ApiServer, id: string, ctrl: string, file: string): string {
  const pid = JSON.parse(s.rt.nx(["state", id]).stdout).pid;
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  const v1 = lines.find((l) => l.split(":")[1]?.split(",").includes(ctrl));
  if (v1 && existsSync(`/sys/fs/cgroup/${ctrl}`)) return readFileSync(`/sys/fs/cgroup/${ctrl}${v1.split(":")[2]}/${file}`, "utf8").trim();
  const v2 = lines.find((l) => l.startsWith("0::"));
  const base = existsSync("/sys/fs/cgroup/unified/cgroup.controllers") ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
  return readFileSync(`${base}${v2?.split(":")[2]}/${file}`, "utf8").trim();
}

for (const backend of ["crun", "lxc"]) {
  describe(`sandbox API on ${backend}`, () => {
    const s = apiServer(backend);
    let alpha = "";
    let beta = "";
    beforeAll(async () => {
      expect(s.cli(["tenant", "add", "alpha", "--max-sandboxes", "2", "--max-memory", "512M", "--max-vcpus", "2", "--max-snapshots", "2"]).code).toBe(0);
      expect(s.cli(["tenant", "add", "beta"]).code).toBe(0);
      alpha = s.cli(["token", "create", "--tenant", "alpha"]).stdout.trim();
      beta = s.cli(["token", "create", "--tenant", "beta", "--expires", "1d"]).stdout.trim();
      await s.start();
    });
    afterAll(async () => {
      await s.stop();
      for (const id of containers(s)) s.rt.nx(["delete", "--force", id]);
      rmSync(s.rt.dir, { recursive: true, force: true });
    });

    test("the socket is root's alone; tokens are required; /healthz is open", async () => {
      expect(statSync(s.sock).mode & 0o777).toBe(0o600);
      expect((await s.call("GET", "/v1/sandboxes")).status).toBe(401);
      expect((await s.call("GET", "/healthz")).json).toEqual({ ok: true });
      const h = await s.call("GET", "/v1/health", { token: alpha });
      expect(h.json.backends.find((b: { backend: string }) => b.backend === backend)).toMatchObject({ ok: true });
      expect(h.json.database.schemaVersion).toBe(1);
    });

    test("an agent's flow: create, upload, exec streaming, snapshot, new sandbox from it, restore, delete", async () => {
      const c = await s.call("POST", "/v1/sandboxes", { token: alpha, body: { image: "busybox-layout", name: "agent", resources: { memory: "128M", vcpus: 0.5, pids: 64 }, env: { GREETING: "hello" } } });
      expectStatus(c, 201);
      const id = c.json.id as string;
      expect(c.json).toMatchObject({ state: "running", backend, tenant: "alpha" });
      expect(containers(s)).toContain(id);

      const up = await s.call("PUT", `/v1/sandboxes/${id}/files/content?path=/work/job.sh&mode=0755`, { token: alpha, raw: '#!/bin/sh\necho "$GREETING from $(hostname)"\ncat /work/data.txt\necho to-stderr >&2\nexit 3\n' });
      expectStatus(up, 201);
      await s.call("PUT", `/v1/sandboxes/${id}/files/content?path=/work/data.txt`, { token: alpha, raw: "version one\n" });
      const ex = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["/work/job.sh"] } });
      expectStatus(ex, 200);
      expect(stdout(ex.text)).toBe(`hello from ${id}\nversion one\n`);
      expect(events(ex.text).filter((e) => e.type === "stderr").map((e) => e.data).join("")).toBe("to-stderr\n");
      expect(exitOf(ex.text)).toMatchObject({ type: "exit", code: 3 });
      // stdin, and a file the sandbox wrote read back through the API
      const wr = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["sh", "-c", "cat > /work/out.txt; wc -c < /work/out.txt"], stdin: "from the agent" } });
      expect(stdout(wr.text).trim()).toBe("14");
      expect((await s.call("GET", `/v1/sandboxes/${id}/files/content?path=/work/out.txt`, { token: alpha })).text).toBe("from the agent");
      expect((await s.call("GET", `/v1/sandboxes/${id}/files?path=/work`, { token: alpha })).json.entries.map((e: { name: string }) => e.name)).toEqual(["data.txt", "job.sh", "out.txt"]);
      // a command that is not there: the process's own 127, not an engine error
      // a command that is not there: never a success; the process's 127 where the backend runs it (lxc's init),
      // an engine error where the backend refuses before (libcrun)
      const missing = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["/no/such/cmd"] } });
      const end = exitOf(missing.text) as { type: string; code?: unknown };
      expect(end.type === "exit" ? end.code : end.type).toBe(backend === "lxc" ? 127 : "error");

      const snap = await s.call("POST", `/v1/sandboxes/${id}/snapshots`, { token: alpha, body: { name: "v1" } });
      expectStatus(snap, 201);
      expect(snap.json).toMatchObject({ name: "v1" });
      expect((await s.call("POST", `/v1/sandboxes/${id}/snapshots/v1/verify`, { token: alpha })).json).toEqual({ ok: true, differences: [] });
      await s.call("PUT", `/v1/sandboxes/${id}/files/content?path=/work/data.txt`, { token: alpha, raw: "version two\n" });

      const copy = await s.call("POST", "/v1/sandboxes", { token: alpha, body: { fromSnapshot: { sandbox: id, snapshot: "v1" }, resources: { memory: "64M" } } });
      expectStatus(copy, 201);
      const cat = await s.call("POST", `/v1/sandboxes/${copy.json.id}/exec`, { token: alpha, body: { command: ["cat", "/work/data.txt"] } });
      expect(stdout(cat.text)).toBe("version one\n");

      const rs = await s.call("POST", `/v1/sandboxes/${id}/snapshots/v1/restore`, { token: alpha });
      expect(rs.json).toEqual({ restarted: true });
      const after = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["cat", "/work/data.txt"] } });
      expect(stdout(after.text)).toBe("version one\n");

      for (const x of [id, copy.json.id]) expect((await s.call("DELETE", `/v1/sandboxes/${x}`, { token: alpha })).status).toBe(204);
      expect(containers(s).filter((x) => x === id || x === copy.json.id)).toEqual([]);
      expect(readdirSync(join(s.data, "sandboxes"))).toEqual([]);
      expect((await s.call("GET", "/v1/usage", { token: alpha })).json.usage).toEqual({ sandboxes: 0, vcpus: 0, memory: 0, disk: 0, snapshots: 0 });
    });

    test("the reservation is a real limit: cgroups hold it, a fork bomb stops at the pids limit", async () => {
      const c = await s.call("POST", "/v1/sandboxes", { token: alpha, body: { image: "busybox.tar", resources: { memory: "96M", vcpus: 0.25, pids: 32 } } });
      expectStatus(c, 201);
      const id = c.json.id as string;
      const st = (await s.call("GET", `/v1/sandboxes/${id}/stats`, { token: alpha })).json;
      expect(st.memory.usage.limit).toBe(96 * 2 ** 20);
      expect(st.pids.limit).toBe(32);
      const quota = cgroupFile(s, id, "cpu", existsSync("/sys/fs/cgroup/cpu") ? "cpu.cfs_quota_us" : "cpu.max");
      expect(quota.split(" ")[0]).toBe("25000");
      const bomb = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["sh", "-c", "n=0; while [ $n -lt 100 ]; do sleep 30 >/dev/null 2>&1 & n=$((n+1)); done; echo started $n"], timeout: 20 } });
      expect(events(bomb.text).filter((e) => e.type === "stderr").map((e) => e.data).join("")).toMatch(/can't fork|Resource temporarily unavailable/);
      // quota: 96M held, 512M is the tenant's memory
      const over = await s.call("POST", "/v1/sandboxes", { token: alpha, body: { image: "busybox.tar", resources: { memory: "500M" } } });
      expect(over.status).toBe(403);
      expect(over.json.error.message).toBe("tenant quota exceeded: memory: 96M used + 500M requested > 512M");
      expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: alpha })).status).toBe(204);
    });

    test("tenants are isolated; another tenant's token finds nothing", async () => {
      const c = await s.call("POST", "/v1/sandboxes", { token: alpha, body: { image: "busybox-layout" } });
      const id = c.json.id as string;
      expect((await s.call("GET", "/v1/sandboxes", { token: beta })).json.sandboxes).toEqual([]);
      expect((await s.call("GET", `/v1/sandboxes/${id}`, { token: beta })).status).toBe(404);
      expect((await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: beta, body: { command: ["true"] } })).status).toBe(404);
      expect((await s.call("GET", `/v1/sandboxes/${id}/files/content?path=/etc/passwd`, { token: beta })).status).toBe(404);
      expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: beta })).status).toBe(404);
      expect(containers(s)).toContain(id);
      // a revoked token stops working at once
      const t = s.cli(["token", "create", "--tenant", "alpha"]).stdout.trim();
      expect((await s.call("GET", "/v1/sandboxes", { token: t })).status).toBe(200);
      expect(s.cli(["token", "revoke", t.split("_")[1] as string]).code).toBe(0);
      const r = await s.call("GET", "/v1/sandboxes", { token: t });
      expect(r.status).toBe(401);
      expect(r.json.error.message).toBe("token revoked");
      expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: alpha })).status).toBe(204);
    });

    test("a background exec's output and exit code are kept; pause and resume", async () => {
      const id = (await s.call("POST", "/v1/sandboxes", { token: alpha, body: { image: "busybox-layout" } })).json.id as string;
      const bg = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: alpha, body: { command: ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.1; done; exit 4"], background: true } });
      expectStatus(bg, 202);
      let info: any;
      for (let i = 0; i < 200; i++) {
        info = (await s.call("GET", `/v1/sandboxes/${id}/execs/${bg.json.id}`, { token: alpha })).json;
        if (!info.running) break;
        await Bun.sleep(50);
      }
      expect(info).toMatchObject({ running: false, exitCode: 4 });
      expect((await s.call("GET", `/v1/sandboxes/${id}/execs/${bg.json.id}/stdout`, { token: alpha })).text).toBe("line 1\nline 2\nline 3\n");
      expect((await s.call("POST", `/v1/sandboxes/${id}/pause`, { token: alpha })).json.state).toBe("paused");
      expect(JSON.parse(s.rt.nx(["state", id]).stdout).status).toBe("paused");
      expect((await s.call("POST", `/v1/sandboxes/${id}/resume`, { token: alpha })).json.state).toBe("running");
      expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: alpha })).status).toBe(204);
    });
  });
}

describe("sandbox API: a server killed in the middle of a create", () => {
  const s = apiServer("crun");
  let tok = "";
  beforeAll(() => {
    expect(s.cli(["tenant", "add", "acme", "--max-sandboxes", "1"]).code).toBe(0);
    tok = s.cli(["token", "create", "--tenant", "acme"]).stdout.trim();
  });
  afterAll(async () => {
    await s.stop();
    for (const id of containers(s)) s.rt.nx(["delete", "--force", id]);
    rmSync(s.rt.dir, { recursive: true, force: true });
  });

  for (const point of ["api.create.after-reserve", "api.create.after-bundle", "api.create.after-engine-create", "api.create.after-launch"]) {
    test(`SIGKILL at ${point}, restart: no orphan container, no bundle, no quota held`, async () => {
      await s.start({ NEXCAGE_FAULT: point });
      const r = await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout" } }).catch((e) => ({ status: 0, error: String(e) }));
      // the connection died with the server
      if (r.status !== 0) throw new Error(`the server answered: ${JSON.stringify(r)}`);
      await s.proc?.exited;
      expect(s.proc?.signalCode).toBe("SIGKILL");
      await s.start();
      expect((await s.call("GET", "/v1/sandboxes", { token: tok })).json.sandboxes).toEqual([]);
      expect((await s.call("GET", "/v1/usage", { token: tok })).json.usage.sandboxes).toBe(0);
      expect(containers(s)).toEqual([]);
      expect(readdirSync(join(s.data, "sandboxes"))).toEqual([]);
      expect(readFileSync(`${s.logFile}.err`, "utf8")).toMatch(/reconciled after an unclean stop/);
      // the one-sandbox quota is free again: a create goes through
      const ok = await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout" } });
      expectStatus(ok, 201);
      expect((await s.call("DELETE", `/v1/sandboxes/${ok.json.id}`, { token: tok })).status).toBe(204);
      await s.stop();
    });
  }

  test("SIGKILL at api.delete.after-mark, restart: the delete is finished", async () => {
    await s.start({ NEXCAGE_FAULT: "api.delete.after-mark" });
    const id = (await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout" } })).json.id as string;
    expect(containers(s)).toEqual([id]);
    const r = await s.call("DELETE", `/v1/sandboxes/${id}`, { token: tok }).catch(() => ({ status: 0 }));
    expect(r.status).toBe(0);
    await s.proc?.exited;
    await s.start();
    expect(containers(s)).toEqual([]);
    expect(readdirSync(join(s.data, "sandboxes"))).toEqual([]);
    expect((await s.call("GET", "/v1/usage", { token: tok })).json.usage.sandboxes).toBe(0);
    await s.stop();
  });

  test("a sandbox whose container vanished (host reboot) comes back as stopped and starts again", async () => {
    await s.start();
    const id = (await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout" } })).json.id as string;
    await s.call("PUT", `/v1/sandboxes/${id}/files/content?path=/kept.txt`, { token: tok, raw: "kept" });
    await s.stop();
    // what a reboot does to /run: the runtime's record is gone, the server's files are not
    expect(s.rt.nx(["delete", "--force", id]).code).toBe(0);
    await s.start();
    expect((await s.call("GET", `/v1/sandboxes/${id}`, { token: tok })).json.state).toBe("stopped");
    expect((await s.call("POST", `/v1/sandboxes/${id}/start`, { token: tok })).json.state).toBe("running");
    const cat = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: tok, body: { command: ["cat", "/kept.txt"] } });
    expect(stdout(cat.text)).toBe("kept");
    expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: tok })).status).toBe(204);
  });
});

describe.skipIf(!Bun.which("mkfs.btrfs"))("sandbox API: disk sizes on btrfs with quotas are real limits", () => {
  const work = join(tmpdir(), `nexcage-api-btrfs-${process.pid}`);
  const mnt = join(work, "mnt");
  const sh = (cmd: string) => Bun.spawnSync(["sh", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  let s: ApiServer;
  let tok = "";
  beforeAll(async () => {
    mkdirSync(mnt, { recursive: true });
    const r = sh(`truncate -s 768M ${work}/btrfs.img && mkfs.btrfs -q -f ${work}/btrfs.img && mount -o loop ${work}/btrfs.img ${mnt} && btrfs quota enable ${mnt}`);
    expect(r.stderr.toString()).toBe("");
    s = apiServer("crun", { data: join(mnt, "server") });
    expect(s.cli(["tenant", "add", "acme", "--max-disk", "200M"]).code).toBe(0);
    tok = s.cli(["token", "create", "--tenant", "acme"]).stdout.trim();
    await s.start();
  });
  afterAll(async () => {
    await s?.stop();
    for (const id of s ? containers(s) : []) s.rt.nx(["delete", "--force", id]);
    sh(`umount -l ${mnt}`);
    rmSync(work, { recursive: true, force: true });
    if (s) rmSync(s.rt.dir, { recursive: true, force: true });
  });

  test("a write past resources.disk fails inside the sandbox, also after a restore; the quota counts it", async () => {
    expect(readFileSync(`${s.logFile}.err`, "utf8")).toContain("sandbox disk sizes are enforced (btrfs qgroups)");
    const c = await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout", resources: { disk: "32M" } } });
    expectStatus(c, 201);
    const id = c.json.id as string;
    expect(statSync(join(s.data, "sandboxes", id, "rootfs")).ino).toBe(256);
    const over = await s.call("POST", "/v1/sandboxes", { token: tok, body: { image: "busybox-layout", resources: { disk: "190M" } } });
    expect(over.json.error.message).toBe("tenant quota exceeded: disk: 32M used + 190M requested > 200M");
    const fill = "dd if=/dev/urandom of=/big bs=1M count=64 && sync";
    const dd = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: tok, body: { command: ["sh", "-c", fill] } });
    expect(events(dd.text).at(-1)?.code).not.toBe(0);
    expect(events(dd.text).filter((e) => e.type === "stderr").map((e) => e.data).join("")).toMatch(/quota exceeded|No space left/i);
    await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: tok, body: { command: ["rm", "-f", "/big"] } });
    expect((await s.call("POST", `/v1/sandboxes/${id}/snapshots`, { token: tok, body: { name: "s1" } })).json.driver).toBe("btrfs");
    expect((await s.call("POST", `/v1/sandboxes/${id}/snapshots/s1/restore`, { token: tok })).json.restarted).toBe(true);
    const again = await s.call("POST", `/v1/sandboxes/${id}/exec`, { token: tok, body: { command: ["sh", "-c", fill] } });
    expect(events(again.text).filter((e) => e.type === "stderr").map((e) => e.data).join("")).toMatch(/quota exceeded|No space left/i);
    expect((await s.call("DELETE", `/v1/sandboxes/${id}`, { token: tok })).status).toBe(204);
    expect(sh(`btrfs subvolume list ${mnt}`).stdout.toString().trim()).toBe("");
  });
});

describe("sandbox API over TCP", () => {
  test("HTTPS with a certificate; plain HTTP only on loopback, with a warning; refused elsewhere", async () => {
    const s = apiServer("crun");
    try {
      const key = join(s.rt.dir, "key.pem");
      const cert = join(s.rt.dir, "cert.pem");
      expect(Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"]).exitCode).toBe(0);
      const port = 20000 + (process.pid % 20000);
      const srv = Bun.spawn([...s.rt.argv, "serve", "--listen", `127.0.0.1:${port}`, "--tls-cert", cert, "--tls-key", key, "--db", s.db], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
      let body = "";
      for (let i = 0; i < 200 && !body; i++) {
        body = await fetch(`https://127.0.0.1:${port}/healthz`, { tls: { rejectUnauthorized: false } }).then((r) => r.text(), () => "");
        if (!body) await Bun.sleep(25);
      }
      expect(body).toBe('{"ok":true}');
      expect(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => "answered", () => "refused")).toBe("refused");
      srv.kill("SIGTERM");
      expect(await new Response(srv.stderr).text()).toContain(`listening on https://127.0.0.1:${port}`);
      const plain = Bun.spawnSync([...s.rt.argv, "serve", "--listen", `0.0.0.0:${port}`, "--db", s.db], { stdout: "pipe", stderr: "pipe" });
      expect(plain.exitCode).toBe(2);
      expect(plain.stderr.toString()).toContain(`refusing plain HTTP on 0.0.0.0:${port}`);
    } finally {
      rmSync(s.rt.dir, { recursive: true, force: true });
    }
  });
});
