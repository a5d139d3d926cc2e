// Logging with runc's contract: `--log FILE` gets every message, one per line, as logrus text
// (`time="..." level=error msg="..."`) or JSON (`{"level","msg","time"}`); containerd reads the last
// error line of that file. Nothing but errors ever reaches stderr unless --debug, so `state`/`ps`
// output parsed with stderr merged stays clean. consola/core is the engine (the full consola costs
// ~25 ms of startup); the reporter below is the only output path.
import { appendFileSync } from "node:fs";
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";

export type LogFormat = "text" | "json";

export interface LogOptions {
  file?: string;
  format: LogFormat;
  debug: boolean;
}

const LEVEL_NAMES: Record<string, string> = {
  fatal: "fatal",
  error: "error",
  warn: "warning",
  log: "info",
  info: "info",
  success: "info",
  start: "info",
  ready: "info",
  box: "info",
  debug: "debug",
  trace: "debug",
  verbose: "debug",
};

export function formatLine(format: LogFormat, level: string, msg: string, time: Date): string {
  const t = time.toISOString().replace(/\.\d+Z$/, "Z");
  if (format === "json") return `${JSON.stringify({ level, msg, time: t })}\n`;
  return `time="${t}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

let opts: LogOptions = { format: "text", debug: false };
let instance: ConsolaInstance | undefined;

export function configureLog(o: LogOptions): void {
  opts = o;
  instance = undefined;
}

function reporterLog(obj: LogObject): void {
  const level = LEVEL_NAMES[obj.type] ?? "info";
  const msg = obj.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
  const line = formatLine(opts.format, level, msg, obj.date);
  if (opts.file) {
    try {
      appendFileSync(opts.file, line);
    } catch {
      // an unwritable log must not turn a success into a failure
    }
  }
  // errors are printed by the CLI itself (one plain line); stderr gets the rest only in debug mode
  if (opts.debug && level !== "error" && level !== "fatal") appendFileSync(2, line);
}

export function log(): ConsolaInstance {
  return (instance ??= createConsola({ level: opts.debug ? 4 : 3, reporters: [{ log: reporterLog }] }));
}
