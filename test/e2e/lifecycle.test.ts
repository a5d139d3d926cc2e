// The shared conformance suite: the same lifecycle, exec, error and concurrency checks on every backend,
// with real busybox containers through the built binary.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { makeBundle } from "../fixtures/busybox.ts";
import { BIN, hostSetup, parentPid, pidAlive, runtimeFor, waitFor } from "./helpers.ts";

// proxmox-lxc runs on the PVE double (test/pve): pct/pvesh/pvesm over a test root, real LXC underneath
const BACKENDS = ["crun", "runc", "lxc", "proxmox-lxc"] as const;
beforeAll(() => hostSetup());

describe.each(BACKENDS)("%s backend", (backend) => {
  const rt = runtimeFor(backend);
  const { nx } = rt;
  const scratch = mkdtempSync(join(tmpdir(), `nexcage-e2e-${backend}-`));
  const sleeper = makeBundle({ args: ["sleep", "1000"], annotations: { "org.example.suite": backend } });
  let n = 0;
  const newId = () => `${backend}-t${++n}`;
  /**
   * Run without pipes: on create/run the container inherits the CLI's stdio, and a pipe would stay open as
   * long as it lives. stderr goes to a file instead.
   */
  const quiet = (args: string[]) => {
    const errFile = join(scratch, `stderr-${++n}`);
    const r = Bun.spawnSync([BIN, "--root", rt.root, "--config", rt.config, ...args], { stdout: "ignore", stderr: Bun.file(errFile) });
    const stderr = existsSync(errFile) ? readFileSync(errFile, "utf8") : "";
    rmSync(errFile, { force: true });
    return { code: r.exitCode ?? -1, stderr };
  };
  const create = (id: string, extra: string[] = [], bundle = sleeper.dir) => quiet(["create", "--bundle", bundle, ...extra, id]);
  const state = (id: string) => JSON.parse(nx(["state", id]).stdout);
  const running = (id: string) => {
    expect(create(id).code).toBe(0);
    expect(nx(["start", id]).code).toBe(0);
  };
  /**
   * The pid file holds the process a subreaper (conmon, containerd-shim) must wait on: the init itself, or for
   * lxc the monitor whose child the init is and which exits with its status (README: lxc backend).
   */
  const pidFileFor = (statePid: number) => (backend === "lxc" || backend === "proxmox-lxc" ? parentPid(statePid) : statePid);
  /** nothing left behind for this id: no record, no lock, no backend state */
  const leftovers = (id: string) => [
    ...[join(rt.root, "containers", id), join(rt.root, "locks", `${id}.lock`), join(rt.root, backend, id)].filter((p) => existsSync(p)),
    ...pveLeftovers(id),
  ];
  /** proxmox: no CT config, VMID claim or volume of this id's on the double */
  const pveLeftovers = (id: string) => {
    if (!rt.pve) return [];
    const found: string[] = [];
    const confs = join(rt.pve.root, "etc/pve/nodes/pve/lxc");
    for (const f of existsSync(confs) ? readdirSync(confs) : []) if (readFileSync(join(confs, f), "utf8").includes(`#nexcage container ${id}\n`)) found.push(join(confs, f));
    const claims = join(rt.root, "proxmox/vmids");
    for (const f of existsSync(claims) ? readdirSync(claims) : []) if (readFileSync(join(claims, f), "utf8") === id) found.push(join(claims, f));
    // no orphan volumes: every images/<vmid> belongs to a CT that still has its config
    const images = join(rt.pve.root, "var/lib/vz/images");
    for (const d of existsSync(images) ? readdirSync(images) : []) if (!existsSync(join(confs, `${d}.conf`))) found.push(join(images, d));
    return found;
  };

  afterAll(() => {
    for (const id of readdirSync(join(rt.root, "containers"), { withFileTypes: true }).map((d) => d.name)) nx(["delete", "--force", id]);
    sleeper.cleanup();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("create → created, pid file written before create returns, live pid", () => {
    const id = newId();
    const pidFile = join(scratch, `${id}.pid`);
    expect(create(id, ["--pid-file", pidFile]).code).toBe(0);
    const filePid = Number(readFileSync(pidFile, "utf8"));
    expect(pidAlive(filePid)).toBe(true);
    const s = state(id);
    const pid = s.pid;
    expect(pidFileFor(pid)).toBe(filePid);
    expect(s).toMatchObject({ id, status: "created", bundle: sleeper.dir, rootfs: join(sleeper.dir, "rootfs") });
    expect(s.annotations).toEqual({ "org.example.suite": backend });
    expect(nx(["delete", id]).code).toBe(0); // runc deletes a created container without --force
    expect(pidAlive(pid)).toBe(false);
    expect(leftovers(id)).toEqual([]);
  });

  test.if(backend === "crun")("crun only (runc has its own defence): container processes never run from the nexcage binary (CVE-2019-5736): a sealed memfd helper", () => {
    const id = newId();
    expect(create(id).code).toBe(0);
    const exe = readlinkSync(`/proc/${state(id).pid}/exe`);
    expect(exe).toContain("memfd:nexcage-crun-helper");
    expect(exe).not.toContain(BIN);
    // the seals forbid writing through that link
    expect(() => openSync(`/proc/${state(id).pid}/exe`, "r+")).toThrow();
    nx(["delete", "--force", id]);
  });

  test("start → running; start again fails and changes nothing", () => {
    const id = newId();
    running(id);
    expect(state(id).status).toBe("running");
    const again = nx(["start", id]);
    expect(again.code).toBe(ExitCode.badState);
    expect(again.stderr).toContain("cannot start an already running container");
    expect(state(id).status).toBe("running");
    nx(["delete", "--force", id]);
  });

  test("exec: exit code and output pass through; env, cwd; --process file; detached with pid file", async () => {
    const id = newId();
    running(id);
    const r = nx(["exec", id, "sh", "-c", "echo out-$FOO; pwd; exit 7"], {});
    expect(r.code).toBe(7);
    const env = nx(["exec", "--env", "FOO=bar", "--cwd", "/tmp", id, "sh", "-c", "echo $FOO; pwd"]);
    expect(env.code).toBe(0);
    expect(env.stdout).toBe("bar\n/tmp\n");
    const proc = join(scratch, `${id}-process.json`);
    writeFileSync(proc, JSON.stringify({ args: ["sh", "-c", "echo from-process-file; exit 3"], cwd: "/", user: { uid: 0, gid: 0 }, env: ["PATH=/bin"] }));
    const pf = nx(["exec", "--process", proc, id]);
    expect(pf.code).toBe(3);
    expect(pf.stdout).toBe("from-process-file\n");
    const pidFile = join(scratch, `${id}-exec.pid`);
    expect(quiet(["exec", "--detach", "--pid-file", pidFile, id, "sleep", "30"]).code).toBe(0);
    const execPid = Number(readFileSync(pidFile, "utf8"));
    expect(pidAlive(execPid)).toBe(true);
    const ps = JSON.parse(nx(["ps", "--format", "json", id]).stdout) as number[];
    expect(ps).toContain(execPid);
    expect(ps).toContain(state(id).pid);
    const missing = nx(["exec", id, "/no/such/binary"]);
    expect(missing.code).not.toBe(0);
    expect(`${missing.stdout}${missing.stderr}`.toLowerCase()).toMatch(/no such file or directory|executable file not found/);
    nx(["delete", "--force", id]);
    await waitFor(() => !pidAlive(execPid), 5000, "exec'd process to die with its container");
  });

  test("pause → paused (exec refused), resume → running", () => {
    const id = newId();
    running(id);
    expect(nx(["pause", id]).code).toBe(0);
    expect(state(id).status).toBe("paused");
    const ex = nx(["exec", id, "true"]);
    expect(ex.code).toBe(ExitCode.badState);
    expect(nx(["pause", id]).code).toBe(ExitCode.badState);
    expect(nx(["resume", id]).code).toBe(0);
    expect(state(id).status).toBe("running");
    expect(nx(["resume", id]).code).toBe(ExitCode.badState);
    nx(["delete", "--force", id]);
  });

  test.each([["TERM"], ["SIGTERM"], ["15"], ["KILL"], ["9"], [""]])("kill with signal %p stops a container that dies on it", async (sig) => {
    const id = newId();
    // sh as pid 1 ignores TERM by default: trap it so every form of TERM really ends the container
    const b = makeBundle({ args: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"] });
    try {
      expect(create(id, [], b.dir).code).toBe(0);
      expect(nx(["start", id]).code).toBe(0);
      // wait until sh has installed its trap: SIGTERM (bit 14) shows in the init's caught-signal mask
      const pid = state(id).pid;
      const caught = () => (BigInt(`0x${/SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0"}`) >> 14n) & 1n;
      await waitFor(() => caught() === 1n, 5000, "the TERM trap");
      const r = nx(sig ? ["kill", id, sig] : ["kill", id]);
      expect(r.code).toBe(0);
      await waitFor(() => state(id).status === "stopped", 5000, `${id} to stop on ${sig || "default"}`);
      expect(state(id).pid).toBe(0);
      const again = nx(["kill", id, "KILL"]);
      expect(again.code).toBe(ExitCode.badState);
      expect(again.stderr).toContain("container not running");
      expect(nx(["delete", id]).code).toBe(0);
      expect(leftovers(id)).toEqual([]);
    } finally {
      nx(["delete", "--force", id]);
      b.cleanup();
    }
  });

  test("kill --all signals every process", async () => {
    const id = newId();
    running(id);
    const pidFile = join(scratch, `${id}-x.pid`);
    expect(quiet(["exec", "-d", "--pid-file", pidFile, id, "sleep", "100"]).code).toBe(0);
    const extra = Number(readFileSync(pidFile, "utf8"));
    expect(nx(["kill", "--all", id, "KILL"]).code).toBe(0);
    await waitFor(() => !pidAlive(extra) && state(id).status === "stopped", 5000, "all processes to die");
    expect(nx(["delete", id]).code).toBe(0);
  });

  test("delete of a running container needs --force; --force of a missing id is silent", () => {
    const id = newId();
    running(id);
    const d = nx(["delete", id]);
    expect(d.code).toBe(ExitCode.badState);
    expect(d.stderr).toContain(`cannot delete container ${id} that is not stopped: running`);
    expect(state(id).status).toBe("running");
    expect(nx(["delete", "--force", id]).code).toBe(0);
    expect(leftovers(id)).toEqual([]);
    const missing = nx(["delete", "--force", "never-created"]);
    expect(missing).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("unknown ids: state, start, kill, delete, exec, pause say `does not exist`", () => {
    for (const args of [["state"], ["start"], ["kill"], ["delete"], ["pause"], ["exec", "--", "true"]]) {
      const [verb, ...rest] = args as [string, ...string[]];
      const r = nx([verb, "ghost", ...rest.filter((x) => x !== "--"), ...(verb === "exec" ? ["true"] : [])].filter(Boolean));
      expect(r.code).toBe(ExitCode.notFound);
      expect(r.stderr).toContain("container does not exist");
    }
  });

  test("run --detach, run in the foreground returning the exit code, list", () => {
    const id = newId();
    const pidFile = join(scratch, `${id}.pid`);
    expect(quiet(["run", "-d", "--bundle", sleeper.dir, "--pid-file", pidFile, id]).code).toBe(0);
    expect(state(id).status).toBe("running");
    expect(Number(readFileSync(pidFile, "utf8"))).toBe(pidFileFor(state(id).pid));
    const list = JSON.parse(nx(["list", "--format", "json"]).stdout) as { id: string; status: string }[];
    expect(list.find((s) => s.id === id)?.status).toBe("running");
    expect(nx(["list", "-q"]).stdout.split("\n")).toContain(id);
    nx(["delete", "--force", id]);

    const fg = newId();
    const b = makeBundle({ args: ["sh", "-c", "echo foreground; exit 5"] });
    try {
      const r = nx(["run", "--bundle", b.dir, fg]);
      expect(r.code).toBe(5);
      expect(r.stdout).toBe("foreground\n");
      expect(leftovers(fg)).toEqual([]); // runc run deletes the container when it exits
    } finally {
      b.cleanup();
    }
  });

  test("update --resources - sets the memory limit in the container's cgroup", () => {
    const id = newId();
    running(id);
    const limit = 96 * 1024 * 1024;
    const r = nx(["update", "--resources", "-", id], { stdin: JSON.stringify({ memory: { limit } }) });
    expect(r.code).toBe(0);
    const pid = state(id).pid;
    const cg = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    const v1 = /:memory:(.*)$/m.exec(cg)?.[1];
    const file = v1 !== undefined ? `/sys/fs/cgroup/memory${v1}/memory.limit_in_bytes` : `/sys/fs/cgroup${/^0::(.*)$/m.exec(cg)?.[1]}/memory.max`;
    expect(Number(readFileSync(file, "utf8"))).toBe(limit);
    const bad = nx(["update", "--resources", "-", id], { stdin: JSON.stringify({ memory: { limit: "lots" } }) });
    expect(bad.code).toBe(ExitCode.invalidSpec);
    expect(bad.stderr).toContain("memory.limit");
    nx(["delete", "--force", id]);
  });

  test("console socket: the pty master arrives over SCM_RIGHTS and carries the container's output", async () => {
    const id = newId();
    const sock = join(scratch, `${id}.sock`);
    const outFile = join(scratch, `${id}.tty`);
    // python's socket.recv_fds is the simplest SCM_RIGHTS receiver here (Bun has none)
    const recv = Bun.spawn(["python3", "-c", `
import socket, os, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
msg, fds, flags, addr = socket.recv_fds(c, 1024, 1)
data = b""
while b"tty-ok" not in data:
    chunk = os.read(fds[0], 1024)
    if not chunk: break
    data += chunk
open(sys.argv[2], "wb").write(data)
`, sock, outFile], { stdout: "ignore", stderr: "inherit" });
    await waitFor(() => existsSync(sock), 5000, "console socket listener");
    const b = makeBundle({ args: ["sh", "-c", "tty; echo tty-ok; sleep 100"], terminal: true });
    try {
      const c = create(id, ["--console-socket", sock], b.dir);
      expect(c.stderr).toBe("");
      expect(c.code).toBe(0);
      expect(nx(["start", id]).code).toBe(0);
      expect(await recv.exited).toBe(0);
      const text = readFileSync(outFile, "utf8");
      expect(text).toContain("/dev/pts/");
      expect(text).toContain("tty-ok");
    } finally {
      recv.kill();
      nx(["delete", "--force", id]);
      b.cleanup();
    }
  });

  test("hooks: createRuntime and poststart get the state on stdin", async () => {
    const id = newId();
    const a = join(scratch, `${id}-createRuntime.json`);
    const p = join(scratch, `${id}-poststart.json`);
    const hook = (file: string) => ({ path: "/bin/sh", args: ["sh", "-c", `cat > ${file}`], timeout: 10 });
    const b = makeBundle({ hooks: { createRuntime: [hook(a)], poststart: [hook(p)] } });
    try {
      expect(create(id, [], b.dir).code).toBe(0);
      expect(JSON.parse(readFileSync(a, "utf8"))).toMatchObject({ id, bundle: b.dir });
      expect(nx(["start", id]).code).toBe(0);
      await waitFor(() => existsSync(p) && readFileSync(p, "utf8").length > 0, 5000, "poststart hook");
      expect(JSON.parse(readFileSync(p, "utf8"))).toMatchObject({ id });
    } finally {
      nx(["delete", "--force", id]);
      b.cleanup();
    }
  });

  test("a failing createRuntime hook fails create and leaves nothing behind", () => {
    const id = newId();
    const b = makeBundle({ hooks: { createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", "echo hook-broke >&2; exit 3"] }] } });
    try {
      const r = create(id, [], b.dir);
      expect(r.code).not.toBe(0);
      expect(r.stderr.toLowerCase()).toContain("hook");
      expect(nx(["state", id]).code).toBe(ExitCode.notFound);
      expect(leftovers(id)).toEqual([]);
      // and the id can be used again at once
      expect(create(id).code).toBe(0);
      nx(["delete", "--force", id]);
    } finally {
      b.cleanup();
    }
  });

  test("bad input: existing id, invalid config.json, bad id, missing bundle; nothing half-created", () => {
    const id = newId();
    expect(create(id).code).toBe(0);
    const dup = create(id);
    expect(dup.code).toBe(ExitCode.exists);
    expect(state(id).status).toBe("created");
    nx(["delete", "--force", id]);

    const bad = makeBundle({ edit: (s) => (s.process.args = "sh") });
    const noVersion = makeBundle({ edit: (s) => delete s.ociVersion });
    try {
      const r = create("badspec", [], bad.dir);
      expect(r.code).toBe(ExitCode.invalidSpec);
      expect(r.stderr).toContain("process.args");
      const r2 = create("badspec", [], noVersion.dir);
      expect(r2.code).toBe(ExitCode.invalidSpec);
      expect(r2.stderr).toContain("ociVersion");
      expect(leftovers("badspec")).toEqual([]);
    } finally {
      bad.cleanup();
      noVersion.cleanup();
    }
    const badId = create("../escape");
    expect(badId.code).toBe(ExitCode.usage);
    expect(badId.stderr).toContain("invalid container id");
    const noBundle = create("nobundle", [], join(scratch, "does-not-exist"));
    expect(noBundle.code).toBe(ExitCode.invalidSpec);
    expect(noBundle.stderr).toContain("does-not-exist");
    expect(leftovers("nobundle")).toEqual([]);
  });

  test("a create that crashed mid-way blocks nothing: state says gone, the next create clears it", () => {
    const id = newId();
    // what a create killed after writing its record looks like: `creating`, and no process holds the lock
    const dir = join(rt.root, "containers", id);
    Bun.spawnSync(["mkdir", "-p", dir]);
    writeFileSync(join(dir, "state.json"), JSON.stringify({ id, backend, bundle: sleeper.dir, rootfs: join(sleeper.dir, "rootfs"), created: "2026-01-01T00:00:00Z", owner: "", annotations: {}, pid: 0, pidStartTime: 0, creating: true }));
    expect(nx(["state", id]).code).toBe(ExitCode.notFound);
    expect(create(id).code).toBe(0);
    expect(state(id).status).toBe("created");
    expect(nx(["delete", id]).code).toBe(0);
    expect(leftovers(id)).toEqual([]);
  });

  test("5 concurrent creates of one id: exactly one wins, the rest fail with `exists`", async () => {
    const id = newId();
    const procs = Array.from({ length: 5 }, () =>
      Bun.spawn([BIN, "--root", rt.root, "--config", rt.config, "create", "--bundle", sleeper.dir, id], { stdout: "ignore", stderr: "ignore" }),
    );
    const codes = await Promise.all(procs.map((p) => p.exited));
    expect(codes.filter((c) => c === 0)).toHaveLength(1);
    expect(codes.filter((c) => c === ExitCode.exists)).toHaveLength(4);
    expect(state(id).status).toBe("created");
    expect(nx(["delete", id]).code).toBe(0);
    expect(leftovers(id)).toEqual([]);
  });
});
