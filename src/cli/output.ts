// Everything by which the CLI leaves a trace, kept light so the `state` fast path can use it too:
// stdout/stderr writes, the --log/--log-format/--debug flags, and how a failure is reported.
import { writeSync } from "node:fs";
import type { Parsed } from "./argv.ts";
import { NexcageError, toNexcageError } from "../core/errors.ts";
import { configureLog, log } from "../core/log.ts";

/**
 * Synchronous write to fd 1 (or 2). process.stdout costs ~5 ms to set up in a compiled Bun binary, more than
 * the whole of `state`; and a sync write can't be cut short by the exit that follows.
 */
export function out(text: string, fd = 1): void {
  const n = writeSync(fd, text);
  // a blocking fd takes it all in one write; a short write (signal, full pipe) is finished byte-exactly.
  // Buffer only on that rare path: setting it up costs measurable time in `state`.
  if (n === text.length && /^[\x00-\x7f]*$/.test(text)) return;
  const buf = Buffer.from(text);
  for (let off = n; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

/** Apply the global logging flags; an unknown --log-format is a usage error. */
export function applyLogFlags(g: Parsed): void {
  const format = g["log-format"];
  if (format !== "text" && format !== "json") throw new NexcageError("usage", `invalid log format ${JSON.stringify(format)}: want text or json`);
  configureLog({ ...(typeof g.log === "string" ? { file: g.log } : {}), format, debug: g.debug === true });
}

/**
 * How every failure leaves the CLI: logged (the --log file is what containerd reads), one plain line on
 * stderr (what podman shows), and the error class's exit code.
 */
export function reportError(e: unknown): number {
  const err = toNexcageError(e);
  log().error(err.message);
  if (!err.printed) out(`nexcage: ${err.message}\n`, 2);
  return err.exitCode;
}
