import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { defineCommand } from "citty";
import busybox from "../../../native/build/busybox" with { type: "file" };
import { defaultSpec } from "../../oci/default-spec.ts";
import { getRuntime, out } from "../context.ts";

const APPLETS = ["sh", "echo", "sleep", "cat", "ls", "ps", "hostname", "id", "true", "false", "uname"];

export default defineCommand({
  meta: { name: "demo", description: "run the embedded busybox container through the routed backend, step by step" },
  args: { id: { type: "string", description: "container id", default: "nexcage-demo" } },
  async run({ args }) {
    const rt = getRuntime();
    const id = String(args.id);
    const bundle = `${rt.root}/demo/${id}`;
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const r = await fn();
      out(`  ${what.padEnd(44)} ${(performance.now() - t0).toFixed(1).padStart(7)} ms\n`);
      return r;
    };
    rmSync(bundle, { recursive: true, force: true });
    await rt.delete(id, true);
    try {
      await step("bundle from the embedded busybox", async () => {
        for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc"]) mkdirSync(`${bundle}/rootfs/${d}`, { recursive: true });
        writeFileSync(`${bundle}/rootfs/bin/busybox`, new Uint8Array(await Bun.file(busybox).arrayBuffer()));
        chmodSync(`${bundle}/rootfs/bin/busybox`, 0o755);
        for (const a of APPLETS) symlinkSync("busybox", `${bundle}/rootfs/bin/${a}`);
        writeFileSync(`${bundle}/rootfs/etc/passwd`, "root:x:0:0:root:/:/bin/sh\n");
        const spec = defaultSpec({ terminal: false, args: ["sleep", "300"], hostname: "nexcage-demo" });
        writeFileSync(`${bundle}/config.json`, JSON.stringify(spec, null, 2));
      });
      const d = await rt.route(id, {});
      out(`  routed to ${d.backend}: ${d.reason}\n`);
      await step("create", () => rt.create({ id, bundle }));
      out(`  state: ${(await rt.state(id)).status}\n`);
      await step("start", () => rt.start(id));
      out(`  state: ${(await rt.state(id)).status}, pid ${(await rt.state(id)).pid}\n`);
      const code = await step("exec: hostname && uname -r", () => rt.exec(id, { args: ["sh", "-c", "echo \"    in container: $(hostname), kernel $(uname -r)\""] }));
      if (code !== 0) throw new Error(`exec exited with ${code}`);
      out(`  ps: ${JSON.stringify(await rt.ps(id))}\n`);
      await step("pause", () => rt.pause(id));
      out(`  state: ${(await rt.state(id)).status}\n`);
      await step("resume", () => rt.resume(id));
      await step("kill KILL", () => rt.kill(id, 9));
      for (let i = 0; i < 100 && (await rt.state(id)).status !== "stopped"; i++) await Bun.sleep(10);
      out(`  state: ${(await rt.state(id)).status}\n`);
      await step("delete", () => rt.delete(id));
      out("demo ok\n");
    } finally {
      await rt.delete(id, true).catch(() => {});
      rmSync(bundle, { recursive: true, force: true });
    }
  },
});
