// Signal names and numbers the way runc's `kill` accepts them: "TERM", "SIGTERM", "term", "15".
import { NexcageError } from "../core/errors.ts";

// Linux x86_64/aarch64 numbering
const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11,
  USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21,
  TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

export function parseSignal(input: string | undefined): number {
  if (input === undefined || input === "") return SIGNALS.TERM as number;
  if (/^\d+$/.test(input)) {
    const n = Number(input);
    if (n >= 1 && n <= 64) return n;
    throw new NexcageError("usage", `unknown signal ${JSON.stringify(input)}`);
  }
  const name = input.toUpperCase().replace(/^SIG/, "");
  const rt = /^RTMIN(\+(\d+))?$/.exec(name);
  if (rt) {
    const n = 34 + Number(rt[2] ?? 0);
    if (n <= 64) return n;
  }
  const n = SIGNALS[name];
  if (n === undefined) throw new NexcageError("usage", `unknown signal ${JSON.stringify(input)}`);
  return n;
}
