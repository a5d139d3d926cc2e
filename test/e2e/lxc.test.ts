// lxc backend specifics beyond the shared suite: what the translation does inside a real container,
// refusals that leave nothing behind, and plain LXC containers next to nexcage's own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ExitCode } from "../../src/core/errors.ts";
import { ensureRootfs, makeBundle } from "../fixtures/busybox.ts";
import { hostSetup, runtimeFor } from "./helpers.ts";

const have = (cmd: string) => Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;

describe.skipIf(!have("lxc-start"))("lxc backend (skipped only where LXC is not installed)", () => {
  const rt = runtimeFor("lxc");
  const lxcpath = join(rt.dir, "lxcpath");
  const { nx } = rt;
  const bundles: { cleanup: () => void }[] = [];
  const bundle = (opts: Parameters<typeof makeBundle>[0]) => {
    const b = makeBundle(opts);
    bundles.push(b);
    return b;
  };
  /** run in the foreground; output through a file (the container inherits our stdio) */
  const run = (id: string, dir: string) => {
    const f = join(rt.dir, `${id}.out`);
    const r = Bun.spawnSync([...nxArgv(), "run", "--bundle", dir, id], { stdout: Bun.file(f), stderr: "pipe" });
    return { code: r.exitCode, stdout: readFileSync(f, "utf8"), stderr: r.stderr.toString() };
  };
  const nxArgv = () => [process.env.NEXCAGE_BIN ?? join(import.meta.dir, "../../dist/nexcage"), "--root", rt.root, "--config", rt.config];
  const nothingLeft = (id: string) =>
    [join(rt.root, "containers", id), join(rt.root, "lxc", id), join(lxcpath, id)].filter((p) => existsSync(p));

  beforeAll(() => hostSetup());
  afterAll(() => {
    Bun.spawnSync(["lxc-stop", "-k", "-P", lxcpath, "-n", "plain"]);
    for (const b of bundles) b.cleanup();
    rmSync(rt.dir, { recursive: true, force: true });
  });

  test("the translated container: hostname, env, cwd, user, rlimits, capabilities, sysctl, masked and read-only paths", () => {
    const b = bundle({
      args: ["sh", "-c", "hostname; echo $GREETING; pwd; id -u; id -g; ulimit -n; grep CapBnd /proc/self/status; cat /proc/sys/net/ipv4/ip_forward; ls /sys/firmware | wc -l; awk '$5 == \"/proc/sys\" { print substr($6, 1, 3) }' /proc/self/mountinfo"],
    });
    const c = b.config;
    c.hostname = "lxc-box";
    c.process.env.push("GREETING=hello-lxc");
    c.process.cwd = "/tmp";
    c.process.user = { uid: 1000, gid: 1000 };
    c.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 512, hard: 512 }];
    c.process.capabilities = { bounding: ["CAP_KILL"], effective: ["CAP_KILL"], permitted: ["CAP_KILL"] };
    c.linux.sysctl = { "net.ipv4.ip_forward": "1" };
    c.linux.maskedPaths = ["/sys/firmware"];
    c.linux.readonlyPaths = ["/proc/sys"];
    writeFileSync(join(b.dir, "config.json"), JSON.stringify(c));
    const r = run("lxc-translate", b.dir);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // CAP_KILL is bit 5
    expect(r.stdout.split("\n")).toEqual(["lxc-box", "hello-lxc", "/tmp", "1000", "1000", "512", "CapBnd:\t0000000000000020", "1", "0", "ro,", ""]);
    expect(readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim()).toBe("0"); // the host's is untouched
    expect(nothingLeft("lxc-translate")).toEqual([]);
  });

  test("a field lxc cannot honour is refused by name, before anything is created", () => {
    const b = bundle({ args: ["true"] });
    b.config.linux.resources = { ...(b.config.linux.resources ?? {}), hugepageLimits: [{ pageSize: "2MB", limit: 1 }] };
    writeFileSync(join(b.dir, "config.json"), JSON.stringify(b.config));
    const r = nx(["create", "--bundle", b.dir, "lxc-refused"]);
    expect(r.code).toBe(ExitCode.invalidSpec);
    expect(r.stderr).toContain("linux.resources.hugepageLimits");
    expect(nothingLeft("lxc-refused")).toEqual([]);
  });

  test("a plain LXC container: listed and marked, and its name is never taken over", async () => {
    mkdirSync(join(lxcpath, "plain"), { recursive: true });
    const conf = [`lxc.rootfs.path = dir:${ensureRootfs()}`, "lxc.uts.name = plain", "lxc.init.cmd = /bin/sleep 1000", "lxc.console.path = none", "lxc.autodev = 1", "lxc.mount.auto = proc:mixed", "lxc.rootfs.options = ro"];
    writeFileSync(join(lxcpath, "plain", "config"), `${conf.join("\n")}\n`);
    const st = Bun.spawnSync(["lxc-start", "-P", lxcpath, "-n", "plain", "-d"], { stderr: "pipe" });
    expect(st.stderr.toString()).toBe("");
    expect(st.exitCode).toBe(0);

    const list = JSON.parse(nx(["list", "--format", "json"]).stdout) as { id: string; status: string; pid: number; annotations?: Record<string, string>; bundle: string }[];
    const plain = list.find((s) => s.id === "plain");
    expect(plain).toMatchObject({ status: "running", bundle: join(lxcpath, "plain"), annotations: { "org.nexcage.unmanaged": "lxc" } });
    expect(plain?.pid).toBeGreaterThan(0);
    expect(nx(["list"]).stdout).toContain(`lxc:${join(lxcpath, "plain")}`);

    // create with that name: refused, and the plain container's files are untouched
    const b = bundle({ args: ["true"] });
    const r = nx(["create", "--bundle", b.dir, "plain"]);
    expect(r.code).toBe(ExitCode.exists);
    expect(r.stderr).toContain("an LXC container named plain already exists");
    expect(readFileSync(join(lxcpath, "plain", "config"), "utf8")).toBe(`${conf.join("\n")}\n`);
    expect(existsSync(join(rt.root, "containers", "plain"))).toBe(false);
    expect(readdirSync(join(lxcpath))).toEqual(["plain"]);
  });
});
