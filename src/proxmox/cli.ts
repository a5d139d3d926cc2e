// Talking to Proxmox VE through its own CLIs (pct, qm, pvesh, pvesm), as an admin would: every call has a
// timeout, and failures are classified into nexcage error categories with Proxmox's message kept verbatim.
import { NexcageError, type ErrorCode } from "../core/errors.ts";

export interface PveConfig {
  pct: string;
  qm: string;
  pvesh: string;
  pvesm: string;
  /** seconds before a pct/qm call counts as hung */
  timeout: number;
}

export interface PveResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Proxmox's wording → category. Order matters: the first match wins. */
const CATEGORIES: [RegExp, ErrorCode][] = [
  [/already exists|already used/, "exists"],
  [/^400 Parameter verification failed|invalid format|type check|not defined in schema|value must/m, "invalidSpec"],
  [/is locked|can't lock file|got timeout.*lock/, "busy"],
  [/storage '[^']*' does not exist|zfs error|btrfs error|no space left|quota exceeded|out of space|unable to allocate|does not support container/i, "storage"],
  [/does not exist|not found|no such/i, "notFound"],
  [/already running|not running|is running/, "badState"],
];

export function classify(stderr: string): ErrorCode {
  for (const [re, code] of CATEGORIES) if (re.test(stderr)) return code;
  return "failure";
}

export class PveCli {
  constructor(readonly cfg: PveConfig) {}

  /** run a PVE command; stdin closed, output captured */
  async run(tool: keyof Omit<PveConfig, "timeout">, args: string[], opts: { timeout?: number } = {}): Promise<PveResult> {
    const argv = [this.cfg[tool], ...args];
    let proc: ReturnType<typeof Bun.spawn>;
    try {
      proc = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    } catch (e) {
      throw new NexcageError("unsupported", `proxmox: cannot run ${argv[0]}: ${(e as Error).message} (is this a Proxmox VE host?)`);
    }
    const limit = (opts.timeout ?? this.cfg.timeout) * 1000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, limit);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout as ReadableStream).text(), new Response(proc.stderr as ReadableStream).text(), proc.exited]);
    clearTimeout(timer);
    if (timedOut) throw new NexcageError("timeout", `proxmox: ${tool} ${args.slice(0, 2).join(" ")} did not finish within ${limit / 1000} s`);
    return { code, stdout, stderr };
  }

  /** run and require success; a failure becomes a categorised error keeping Proxmox's own words */
  async ok(tool: keyof Omit<PveConfig, "timeout">, args: string[], opts: { timeout?: number } = {}): Promise<string> {
    const r = await this.run(tool, args, opts);
    if (r.code === 0) return r.stdout;
    const msg = r.stderr.trim().split("\n").join(": ") || `exit ${r.code}`;
    throw new NexcageError(classify(r.stderr), `proxmox: ${tool} ${args[0]}${args[1] && !args[1].startsWith("-") ? ` ${args[1]}` : ""}: ${msg}`);
  }
}
