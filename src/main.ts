#!/usr/bin/env bun
import { fastPath } from "./cli/fast.ts";

// output is written synchronously, so exiting right away loses nothing and saves the event loop's wind-down;
// the full CLI is imported only when the fast path (plain `state ID`) does not apply
const argv = process.argv.slice(2);
fastPath(argv)
  .then(async (code) => code ?? (await import("./cli/main.ts")).main(argv))
  .then((code) => process.exit(code));
