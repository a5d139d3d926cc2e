// The PVE double's guest agent: answers QGA (guest-sync, guest-exec, guest-exec-status) on <vmid>.qga for
// as long as the VM's QEMU runs. Its "guest OS" is a busybox root made here: no test boots a real kernel
// (that is the microVM work); what this proves is qm's protocol and nexcage's decoding of it.
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, copyFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";

const [vmid, sockPath, qemuPidFile] = process.argv.slice(2) as [string, string, string];
const guestRoot = join(dirname(sockPath), `${vmid}.guest`);
const CHROOT = Bun.which("chroot") ?? "/usr/sbin/chroot";

function guestOs(): void {
  if (existsSync(join(guestRoot, "bin/sh"))) return;
  for (const d of ["bin", "tmp", "proc", "dev", "etc"]) mkdirSync(join(guestRoot, d), { recursive: true });
  copyFileSync("/bin/busybox", join(guestRoot, "bin/busybox"));
  for (const app of ["sh", "echo", "cat", "ls", "hostname", "true", "false", "sleep", "uname", "id"]) symlinkSync("busybox", join(guestRoot, "bin", app));
}

interface Job {
  exited: boolean;
  exitcode?: number;
  out: Buffer[];
  err: Buffer[];
}
const jobs = new Map<number, Job>();

function handle(req: { execute: string; arguments?: Record<string, unknown> }): unknown {
  const a = req.arguments ?? {};
  switch (req.execute) {
    case "guest-sync":
      return { return: a.id };
    case "guest-ping":
      return { return: {} };
    case "guest-exec": {
      const argv = [String(a.path), ...((a.arg as string[]) ?? [])];
      const p = Bun.spawn([CHROOT, guestRoot, ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { PATH: "/bin" } });
      const job: Job = { exited: false, out: [], err: [] };
      jobs.set(p.pid, job);
      void (async () => {
        const [o, e, code] = await Promise.all([new Response(p.stdout).arrayBuffer(), new Response(p.stderr).arrayBuffer(), p.exited]);
        job.out.push(Buffer.from(o));
        job.err.push(Buffer.from(e));
        job.exitcode = code;
        job.exited = true;
      })();
      return { return: { pid: p.pid } };
    }
    case "guest-exec-status": {
      const job = jobs.get(Number(a.pid));
      if (!job) return { error: { class: "GenericError", desc: `Invalid parameter 'pid'` } };
      if (!job.exited) return { return: { exited: false } };
      const out = Buffer.concat(job.out), err = Buffer.concat(job.err);
      return { return: { exited: true, exitcode: job.exitcode, ...(out.length ? { "out-data": out.toString("base64") } : {}), ...(err.length ? { "err-data": err.toString("base64") } : {}) } };
    }
    default:
      return { error: { class: "CommandNotFound", desc: `The command ${req.execute} has not been found` } };
  }
}

guestOs();
rmSync(sockPath, { force: true });
const server = createServer((c) => {
  let buf = "";
  c.on("data", (d) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        c.write(`${JSON.stringify(handle(JSON.parse(line)))}\n`);
      } catch (e) {
        c.write(`${JSON.stringify({ error: { class: "GenericError", desc: (e as Error).message } })}\n`);
      }
    }
  });
  c.on("error", () => {});
});
server.listen(sockPath);
// the agent lives as long as its VM
setInterval(() => {
  try {
    process.kill(Number(readFileSync(qemuPidFile, "utf8")), 0);
  } catch {
    server.close();
    rmSync(sockPath, { force: true });
    process.exit(0);
  }
}, 200);
