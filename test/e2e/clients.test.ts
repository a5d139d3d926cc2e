// Real clients drive nexcage as their OCI runtime: podman (through conmon) and containerd's `ctr` (through
// containerd-shim-runc-v2 and go-runc), for the crun, runc and lxc backends. Everything runs in private
// storage/state dirs; the image is the local busybox rootfs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ociArchive, rootfsTar } from "../fixtures/busybox.ts";
import { BIN, hostSetup } from "./helpers.ts";

const work = mkdtempSync(join(tmpdir(), "nexcage-clients-"));
const have = (cmd: string) => Bun.spawnSync(["sh", "-c", `command -v ${cmd}`]).exitCode === 0;

function sh(argv: string[], opts: { env?: Record<string, string> } = {}) {
  // output to files, not pipes: containers inherit the runtime's stdio
  const o = join(work, `out-${Math.random().toString(36).slice(2)}`);
  const e = `${o}.err`;
  const r = Bun.spawnSync(argv, { stdout: Bun.file(o), stderr: Bun.file(e), env: { ...process.env, ...opts.env } });
  const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  const res = { code: r.exitCode ?? -1, stdout: read(o), stderr: read(e) };
  rmSync(o, { force: true });
  rmSync(e, { force: true });
  return res;
}

/**
 * A runtime wrapper per backend: clients pass their own flags only, so the backend choice travels in
 * NEXCAGE_CONFIG. Named `nexcage` like the real binary (podman only passes --log-format json to runtimes
 * whose name it knows; the name must stay nexcage's own).
 */
function wrapper(backend: string): string {
  const dir = join(work, `rt-${backend}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ defaultBackend: backend, lxc: { lxcpath: join(dir, "lxcpath") } }));
  const path = join(dir, "nexcage");
  writeFileSync(path, `#!/bin/sh\nNEXCAGE_CONFIG=${join(dir, "config.json")} exec ${BIN} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

beforeAll(() => hostSetup());
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!have("podman"))("podman --runtime nexcage (skipped only where podman is not installed)", () => {
  const store = ["--root", join(work, "podman/root"), "--runroot", join(work, "podman/runroot"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"];
  const runOpts = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
  const image = "localhost/nexcage-busybox:test";

  beforeAll(() => {
    const imp = sh(["podman", ...store, "import", rootfsTar(), image]);
    expect(imp.code).toBe(0);
  });
  afterAll(() => {
    sh(["podman", ...store, "rm", "-af"]);
    sh(["podman", ...store, "system", "reset", "-f"]);
  });

  describe.each(["crun", "runc", "lxc"])("%s backend", (backend) => {
    const P = () => ["podman", ...store, "--runtime", wrapper(backend)];

    test("run: output and exit code come back", () => {
      const r = sh([...P(), "run", "--rm", ...runOpts, image, "sh", "-c", "echo hello-from-podman; exit 3"]);
      expect(r.stdout).toBe("hello-from-podman\n");
      expect(r.code).toBe(3);
    });

    test("run -d, exec, exec -t, pause/unpause, stop, rm", () => {
      const name = `nx-${backend}-${Date.now()}`;
      const d = sh([...P(), "run", "-d", "--name", name, ...runOpts, image, "sleep", "1000"]);
      expect(d.code).toBe(0);
      try {
        // podman passes no --root: the default /run/nexcage, with the backend's own state under it
        const full = sh([...P(), "inspect", "-f", "{{.Id}}", name]).stdout.trim();
        expect(existsSync(`/run/nexcage/containers/${full}/state.json`)).toBe(true);
        expect(existsSync(`/run/nexcage/${backend}/${full}`)).toBe(true);
        const ex = sh([...P(), "exec", name, "sh", "-c", "echo exec-ok; exit 4"]);
        expect(ex.stdout).toBe("exec-ok\n");
        expect(ex.code).toBe(4);
        const tty = sh([...P(), "exec", "-t", name, "sh", "-c", "tty"]);
        expect(tty.code).toBe(0);
        expect(tty.stdout).toContain("/dev/pts/");
        expect(sh([...P(), "pause", name]).code).toBe(0);
        expect(sh([...P(), "inspect", "-f", "{{.State.Status}}", name]).stdout.trim()).toBe("paused");
        expect(sh([...P(), "unpause", name]).code).toBe(0);
        expect(sh([...P(), "inspect", "-f", "{{.State.Status}}", name]).stdout.trim()).toBe("running");
        expect(sh([...P(), "stop", "-t", "1", name]).code).toBe(0);
        expect(sh([...P(), "inspect", "-f", "{{.State.Status}}", name]).stdout.trim()).toBe("exited");
        expect(sh([...P(), "rm", name]).code).toBe(0);
        expect(existsSync(`/run/nexcage/containers/${full}`)).toBe(false);
      } finally {
        sh([...P(), "rm", "-f", name]);
      }
    });

    test("a missing executable maps to podman's 127", () => {
      const r = sh([...P(), "run", "--rm", ...runOpts, image, "/no/such/binary"]);
      expect(r.code).toBe(127);
    });
  });
});

describe.skipIf(!have("containerd") || !have("ctr"))("ctr run --runc-binary nexcage (skipped only where containerd is not installed)", () => {
  const dir = join(work, "containerd");
  const sock = join(dir, "c.sock");
  const image = "localhost/nexcage-busybox:test";
  let daemon: ReturnType<typeof Bun.spawn> | undefined;
  const C = (...args: string[]) => sh(["ctr", "-a", sock, ...args]);

  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "config.toml"),
      `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${sock}"\n[plugins."io.containerd.grpc.v1.cri"]\n  disable = true\n`,
    );
    daemon = Bun.spawn(["containerd", "--config", join(dir, "config.toml")], { stdout: Bun.file(join(dir, "log")), stderr: Bun.file(join(dir, "log.err")) });
    for (let i = 0; i < 100 && C("version").code !== 0; i++) await Bun.sleep(100);
    expect(C("version").code).toBe(0);
    // ctr reports a missing digest for the index it synthesises, yet imports and unpacks the image
    C("image", "import", "--index-name", image, ociArchive(join(work, "image.tar")));
    expect(C("image", "ls", "-q").stdout).toContain(image);
  });

  afterAll(async () => {
    daemon?.kill();
    await daemon?.exited;
  });

  describe.each(["crun", "runc", "lxc"])("%s backend", (backend) => {
    test("run --rm: output and exit code", () => {
      const r = C("run", "--rm", "--runc-binary", wrapper(backend), image, `ctr-${backend}-1`, "sh", "-c", "echo hello-from-ctr; exit 6");
      expect(r.stdout).toBe("hello-from-ctr\n");
      expect(r.code).toBe(6);
    });

    test("detached task: exec, pause/resume, kill, delete", async () => {
      const id = `ctr-${backend}-2`;
      expect(C("run", "-d", "--runc-binary", wrapper(backend), image, id, "sleep", "1000").code).toBe(0);
      try {
        // the shim passes --root /run/containerd/runc/<namespace>; the routed backend keeps its state under it
        expect(existsSync(`/run/containerd/runc/default/containers/${id}/state.json`)).toBe(true);
        expect(existsSync(`/run/containerd/runc/default/${backend}/${id}`)).toBe(true);
        const ex = C("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo exec-in-ctr; exit 4");
        expect(ex.stdout).toBe("exec-in-ctr\n");
        expect(ex.code).toBe(4);
        expect(C("task", "pause", id).code).toBe(0);
        expect(C("task", "ls").stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+PAUSED`));
        expect(C("task", "resume", id).code).toBe(0);
        expect(C("task", "ls").stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
        expect(C("task", "kill", "-s", "KILL", id).code).toBe(0);
        for (let i = 0; i < 50 && !/STOPPED/.test(C("task", "ls").stdout); i++) await Bun.sleep(100);
        expect(C("task", "ls").stdout).toMatch(new RegExp(`${id}\\s+\\d+\\s+STOPPED`));
        expect(C("task", "delete", id).code).toBe(0);
      } finally {
        C("task", "delete", "-f", id);
        C("container", "delete", id);
      }
    });
  });
});
