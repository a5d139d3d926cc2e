#!/usr/bin/env bun
// Build: compile native/ with the system gcc (linking Debian's libcrun.a into our shim), then compile the
// CLI with Bun into one executable, dist/nexcage, that embeds the shim and a busybox for `nexcage demo`.
//
// libcrun.a from Debian is PIE, not PIC: its objects reach `stderr` and `environ` through PC32 relocations,
// which a shared object can't hold. We rename those two symbols in a copy of the archive (objcopy) and the
// shim defines hidden variables with the new names, filled in before every libcrun call. libcrun's
// constructor is removed (see below).
import { $ } from "bun";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = import.meta.dir;
const LIBCRUN_A = "/usr/lib/x86_64-linux-gnu/libcrun.a";
const BUSYBOX = "/bin/busybox";
const SUPPORTED_LIBCRUN = /^1\.8(\.|$)/; // native/libcrun_abi.h mirrors libcrun 1.8.x

async function libcrunVersion(): Promise<string> {
  const out = await $`dpkg-query -W -f=\${Version} crun`.nothrow().quiet().text();
  const v = out.trim().replace(/-.*$/, "");
  if (!v) throw new Error("build: the crun package (libcrun.a) is not installed: apt-get install crun");
  if (!SUPPORTED_LIBCRUN.test(v)) throw new Error(`build: libcrun ${v} is installed; native/libcrun_abi.h matches 1.8.x only`);
  return v;
}

export async function buildNative(outDir = join(ROOT, "native/build")): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  if (!existsSync(LIBCRUN_A)) throw new Error(`build: ${LIBCRUN_A} missing: apt-get install crun`);
  const version = await libcrunVersion();
  const work = mkdtempSync(join(tmpdir(), "nexcage-build-"));
  try {
    await $`ar x ${LIBCRUN_A}`.cwd(work).quiet();
    const objs = readdirSync(work).filter((f) => f.endsWith(".o"));
    for (const o of objs) {
      // libcrun's only constructor (linux.c: libcrun_rexec) re-executes the *host process* from a memfd copy
      // of /proc/self/exe on load: right for the crun CLI, wrong for a library inside nexcage (it would
      // re-run the whole runtime). Drop it; see README "Security notes".
      const strip = o === "libcrun_la-linux.o" ? ["--remove-section", ".init_array", "--remove-section", ".rela.init_array"] : [];
      await $`objcopy --redefine-sym stderr=nx_crun_stderr --redefine-sym environ=nx_crun_environ ${strip} ${o}`.cwd(work).quiet();
    }
    const ctors = await $`readelf -SW ${objs}`.cwd(work).quiet().text();
    if (ctors.includes(".init_array")) throw new Error("build: libcrun.a has a constructor nexcage does not know about; review it before linking");
    await $`ar rcs libcrun_pic.a ${objs}`.cwd(work).quiet();
    const so = join(outDir, "libnexcage_crun.so");
    const gcc = [
      "gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", `-DNX_LIBCRUN_VERSION="${version}"`,
      "-o", so, join(ROOT, "native/crun_shim.c"), `-I${join(ROOT, "native")}`,
      "-Wl,-z,defs", "-Wl,-Bsymbolic", "-Wl,--whole-archive", join(work, "libcrun_pic.a"), "-Wl,--no-whole-archive",
      "-lyajl", "-lseccomp", "-lcap", "-lsystemd",
    ];
    // the same source as an executable: create/exec run it from a sealed memfd (see native/crun_shim.c)
    const helper = join(outDir, "nexcage-crun-helper");
    const helperCc = [
      "gcc", "-O2", "-Wall", "-Wextra", "-DNX_HELPER", `-DNX_LIBCRUN_VERSION="${version}"`,
      "-o", helper, join(ROOT, "native/crun_shim.c"), `-I${join(ROOT, "native")}`,
      join(work, "libcrun_pic.a"), "-lyajl", "-lseccomp", "-lcap", "-lsystemd",
    ];
    for (const cmd of [gcc, helperCc]) {
      const cc = Bun.spawnSync(cmd, { stdout: "inherit", stderr: "inherit" });
      if (cc.exitCode !== 0) throw new Error(`build: gcc failed (${cc.exitCode}); are libyajl-dev libseccomp-dev libcap-dev libsystemd-dev installed?`);
    }
    await buildLxc(outDir);
    // parallel streamed SHA-256 for snapshot manifests (OpenSSL's, SHA-NI where the CPU has it)
    const hash = Bun.spawnSync(["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-Wl,-z,defs", "-o", join(outDir, "libnexcage_hash.so"), join(ROOT, "native/hash_shim.c"), "-lcrypto", "-lpthread"], { stdout: "inherit", stderr: "inherit" });
    if (hash.exitCode !== 0) throw new Error("build: gcc failed on native/hash_shim.c (is libssl-dev installed?)");
    // demo's embedded rootfs binary
    if (!existsSync(BUSYBOX)) throw new Error(`build: ${BUSYBOX} missing: apt-get install busybox-static`);
    copyFileSync(BUSYBOX, join(outDir, "busybox"));
    return so;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The lxc backend's three pieces: the shim over the system liblxc (dlopened from a memfd), the monitor
 * helper (run from a sealed memfd; also linked to liblxc) and the container init (static: it runs inside
 * rootfs that may have no libc).
 */
async function buildLxc(outDir: string): Promise<void> {
  if (!existsSync("/usr/include/lxc/lxccontainer.h")) throw new Error("build: liblxc headers missing: apt-get install lxc-dev");
  const inc = `-I${join(ROOT, "native")}`;
  const cmds = [
    ["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-Wl,-z,defs", inc, "-o", join(outDir, "libnexcage_lxc.so"), join(ROOT, "native/lxc_shim.c"), "-llxc", "-lutil"],
    ["gcc", "-O2", "-Wall", "-Wextra", inc, "-o", join(outDir, "nexcage-lxc-monitor"), join(ROOT, "native/lxc_monitor.c"), "-llxc", "-lutil"],
    ["gcc", "-O2", "-Wall", "-Wextra", "-static", inc, "-o", join(outDir, "nexcage-lxc-init"), join(ROOT, "native/lxc_init.c")],
  ];
  for (const cmd of cmds) {
    const cc = Bun.spawnSync(cmd, { stdout: "inherit", stderr: "inherit" });
    if (cc.exitCode !== 0) throw new Error(`build: gcc failed on ${cmd.at(-1)} (${cc.exitCode})`);
  }
}

export async function buildBinary(outFile = join(ROOT, "dist/nexcage")): Promise<string> {
  const r = await Bun.build({
    entrypoints: [join(ROOT, "src/main.ts")],
    compile: { outfile: outFile },
    minify: true,
    // precompiled bytecode: ~4 ms less startup, most of what `state` costs beyond Bun itself
    bytecode: true,
    sourcemap: "none",
  });
  if (!r.success) throw new Error(`build: bun build failed:\n${r.logs.join("\n")}`);
  return resolve(outFile);
}

if (import.meta.main) {
  const t0 = performance.now();
  const so = await buildNative();
  const bin = await buildBinary();
  console.log(`built ${so}\nbuilt ${bin} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
