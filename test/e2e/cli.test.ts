// nexcage's own verbs and the CLI's global behaviour, through the built binary.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { makeBundle } from "../fixtures/busybox.ts";
import { BIN } from "./helpers.ts";

const work = mkdtempSync(join(tmpdir(), "nexcage-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function nx(args: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync([BIN, "--root", join(work, "root"), ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
function config(obj: unknown): string {
  const p = join(work, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify(obj));
  return p;
}

describe("route explains the decision", () => {
  const cfg = config({ defaultBackend: "crun", routing: [{ name: "dbs", id: "db-*", backend: "runc" }, { id: "^ci-[0-9]+$", backend: "runc" }] });

  test("a glob rule, by name", () => {
    const r = nx(["--config", cfg, "route", "db-1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("backend: runc");
    expect(r.stdout).toContain("rule #1 (dbs)");
    expect(r.stdout).toContain(cfg);
  });

  test("a regex rule, as json", () => {
    const r = JSON.parse(nx(["--config", cfg, "route", "--format", "json", "ci-42"]).stdout);
    expect(r).toMatchObject({ id: "ci-42", backend: "runc", by: "rule", config: cfg });
    expect(r.rule.index).toBe(1);
  });

  test("the default, and the bundle annotation that overrides the rules", () => {
    expect(JSON.parse(nx(["--config", cfg, "route", "-f", "json", "web"]).stdout)).toMatchObject({ backend: "crun", by: "default" });
    const b = makeBundle({ annotations: { "org.nexcage.backend": "crun" } });
    try {
      const r = JSON.parse(nx(["--config", cfg, "route", "--bundle", b.dir, "--format", "json", "db-9"]).stdout);
      expect(r).toMatchObject({ backend: "crun", by: "annotation" });
    } finally {
      b.cleanup();
    }
  });

  test("a backend that cannot work here falls back when the config allows it, and says why", () => {
    const fb = config({ defaultBackend: "runc", fallback: ["crun"] });
    const r = JSON.parse(nx(["--config", fb, "route", "--format", "json", "x"], { NEXCAGE_RUNC: "/nonexistent/runc" }).stdout);
    expect(r).toMatchObject({ backend: "crun", fallbackFrom: "runc" });
    expect(r.reason).toContain("fallback to crun");
    // without a fallback, create refuses with the reason instead of picking another backend
    const strict = config({ defaultBackend: "runc" });
    const b = makeBundle();
    try {
      const c = Bun.spawnSync([BIN, "--root", join(work, "root"), "--config", strict, "create", "--bundle", b.dir, "nofallback"], { stdout: "ignore", stderr: "pipe", env: { ...process.env, NEXCAGE_RUNC: "/nonexistent/runc" } });
      expect(c.exitCode).toBe(ExitCode.unsupported);
      expect(c.stderr.toString()).toContain("/nonexistent/runc");
      expect(existsSync(join(work, "root/containers/nofallback"))).toBe(false);
    } finally {
      b.cleanup();
    }
  });

  test("NexCage (Zig) config files are read", () => {
    const legacy = config({ container_config: { routing: [{ pattern: "kube-*", runtime: "runc" }], default_runtime: "crun" } });
    const r = JSON.parse(nx(["--config", legacy, "route", "-f", "json", "kube-proxy"]).stdout);
    expect(r).toMatchObject({ backend: "runc", by: "rule" });
    expect(r.reason).toContain("container_config.routing[0]");
  });

  test("an invalid config is refused with the file and key named (exit 3)", () => {
    const bad = config({ defaultBackend: "crun", routs: [] });
    const r = nx(["--config", bad, "route", "x"]);
    expect(r.code).toBe(ExitCode.invalidSpec);
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain("routs");
    const viaEnv = nx(["route", "x"], { NEXCAGE_CONFIG: bad });
    expect(viaEnv.code).toBe(ExitCode.invalidSpec);
  });
});

describe("health", () => {
  test("json: every backend with ok/problems/details; crun and runc work on this (prepared) host", () => {
    const r = nx(["health", "--format", "json"]);
    expect(r.code).toBe(0);
    const h = JSON.parse(r.stdout);
    const by = Object.fromEntries(h.backends.map((b: { backend: string }) => [b.backend, b]));
    expect(Object.keys(by)).toEqual(["crun", "runc", "lxc", "proxmox-lxc", "proxmox-vm", "microvm"]);
    expect(by.crun.ok).toBe(true);
    expect(by.crun.details.libcrun).toMatch(/^1\.8/);
    expect(by.crun.details.cgroups).toMatch(/unified|hybrid|legacy/);
    expect(by.runc.ok).toBe(true);
    expect(by.lxc.ok).toBe(true);
    expect(by.lxc.details.liblxc).toMatch(/^\d+\.\d+/);
    // no pct/qm on this host's PATH: not a Proxmox node
    expect(by["proxmox-lxc"]).toMatchObject({ ok: false, problems: ["pct not found: this is not a Proxmox VE host (or set proxmox.pct in the nexcage config)"] });
    expect(by["proxmox-vm"].ok).toBe(false);
    expect(by.microvm).toMatchObject({ ok: false, problems: ["not available in this build"] });
  });

  test("doctor is the same command; a broken default backend makes it exit 8", () => {
    const cfg = config({ defaultBackend: "runc" });
    const r = nx(["--config", cfg, "doctor"], { NEXCAGE_RUNC: "/nonexistent/runc" });
    expect(r.code).toBe(ExitCode.unsupported);
    expect(r.stdout).toMatch(/runc\s+FAIL/);
    expect(r.stdout).toContain("/nonexistent/runc");
  });
});

describe("global behaviour", () => {
  test("--help, --version, version", () => {
    expect(nx(["--help"]).stdout).toContain("usage: nexcage");
    expect(nx(["create", "--help"]).stdout).toContain("--pid-file");
    expect(nx(["--version"]).stdout).toBe(nx(["version"]).stdout);
  });

  test("usage errors exit 2 with one line", () => {
    for (const args of [["frobnicate"], ["start"], ["kill", "--bogus", "x"], ["kill", "x", "NOTASIGNAL"], ["--log-format", "xml", "list"]]) {
      const r = nx(args);
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  test("--log with --log-format json gets {level,msg,time} lines; the error is the last one", () => {
    const log = join(work, "log.json");
    const r = nx(["--log", log, "--log-format", "json", "state", "ghost"]);
    expect(r.code).toBe(ExitCode.notFound);
    const last = JSON.parse(readFileSync(log, "utf8").trim().split("\n").pop() ?? "");
    expect(Object.keys(last)).toEqual(["level", "msg", "time"]);
    expect(last.level).toBe("error");
    expect(last.msg).toContain("container does not exist");
  });

  test("flag forms runc accepts: --flag=value, -flag value, global flags before the verb", () => {
    const b = makeBundle();
    const pid = join(work, "forms.pid");
    try {
      const c = Bun.spawnSync([BIN, `--root=${join(work, "root2")}`, "--log-format=json", "create", "-bundle", b.dir, `-pid-file=${pid}`, "forms"], { stdout: "ignore", stderr: "ignore" });
      expect(c.exitCode).toBe(0);
      expect(Number(readFileSync(pid, "utf8"))).toBeGreaterThan(0);
      const s = Bun.spawnSync([BIN, "-root", join(work, "root2"), "state", "forms"], { stdout: "pipe" });
      expect(JSON.parse(s.stdout.toString()).status).toBe("created");
    } finally {
      Bun.spawnSync([BIN, "--root", join(work, "root2"), "delete", "-f", "forms"]);
      b.cleanup();
    }
  });

  test("spec writes runc's starter config.json and refuses to overwrite one", () => {
    const dir = mkdtempSync(join(work, "spec-"));
    expect(nx(["spec", "--bundle", dir]).code).toBe(0);
    const s = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    expect(s.process.args).toEqual(["sh"]);
    expect(s.root).toEqual({ path: "rootfs", readonly: true });
    const again = nx(["spec", "--bundle", dir]);
    expect(again.code).toBe(ExitCode.exists);
    const rootless = mkdtempSync(join(work, "spec-"));
    expect(nx(["spec", "--rootless", "-b", rootless]).code).toBe(0);
    expect(JSON.parse(readFileSync(join(rootless, "config.json"), "utf8")).linux.uidMappings).toHaveLength(1);
  });

  test("demo runs the embedded busybox end to end", () => {
    const r = nx(["demo"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("in container: nexcage-demo");
    expect(r.stdout).toContain("demo ok");
  });
});

describe("events", () => {
  test("--stats: one JSON line with runc's shape, live numbers from the container's cgroups", () => {
    const b = makeBundle({ args: ["sleep", "1000"] });
    const root = join(work, "events");
    const run = (args: string[], quiet = false) => {
      const r = Bun.spawnSync([BIN, "--root", root, ...args], { stdout: quiet ? "ignore" : "pipe", stderr: "ignore" });
      return { code: r.exitCode ?? -1, stdout: r.stdout?.toString() ?? "" };
    };
    try {
      expect(run(["run", "-d", "--bundle", b.dir, "ev"], true).code).toBe(0);
      const r = run(["events", "--stats", "ev"]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split("\n");
      expect(lines).toHaveLength(1);
      const e = JSON.parse(lines[0] as string);
      expect(e).toMatchObject({ type: "stats", id: "ev" });
      expect(Object.keys(e.data)).toEqual(["cpu", "memory", "pids", "blkio"]);
      expect(e.data.pids.current).toBe(1);
      expect(e.data.memory.usage.usage).toBeGreaterThan(0);
      expect(e.data.cpu.usage.total).toBeGreaterThan(0);
      expect(run(["events", "--interval", "5x", "ev"]).code).toBe(ExitCode.usage);
      // the stream ends by itself once the container stops
      expect(run(["kill", "ev", "KILL"]).code).toBe(0);
      for (let i = 0; i < 100 && JSON.parse(run(["state", "ev"]).stdout).status !== "stopped"; i++) Bun.sleepSync(10);
      expect(run(["events", "--interval", "100ms", "ev"]).code).toBe(0);
      expect(run(["events", "--stats", "ev"]).code).toBe(ExitCode.badState);
    } finally {
      run(["delete", "--force", "ev"]);
      b.cleanup();
    }
  });
});
