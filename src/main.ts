#!/usr/bin/env bun
import { main } from "./cli/main.ts";

// output is written synchronously (cli/context.ts), so exiting right away loses nothing and saves the
// event loop's wind-down
main(process.argv.slice(2)).then((code) => process.exit(code));
