// How every failure leaves the CLI: logged (the --log file is what containerd reads), one plain line on
// stderr (what podman shows), and the error class's exit code.
import { writeSync } from "node:fs";
import { toNexcageError } from "../core/errors.ts";
import { log } from "../core/log.ts";

export function reportError(e: unknown): number {
  const err = toNexcageError(e);
  log().error(err.message);
  if (!err.printed) writeSync(2, `nexcage: ${err.message}\n`);
  return err.exitCode;
}
