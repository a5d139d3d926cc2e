import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { NexcageError } from "../../core/errors.ts";
import { defaultSpec } from "../../oci/default-spec.ts";
import { str } from "../context.ts";

export default defineCommand({
  meta: { name: "spec", description: "write a starter config.json into the bundle directory" },
  args: {
    bundle: { type: "string", alias: "b", description: "bundle directory (default: current directory)" },
    rootless: { type: "boolean", description: "a spec for a rootless container" },
  },
  run({ args }) {
    const path = resolve(str(args.bundle) ?? ".", "config.json");
    // never overwrite someone's config (runc refuses the same way)
    if (existsSync(path)) throw new NexcageError("exists", `file ${path} exists: remove it first`);
    writeFileSync(path, `${JSON.stringify(defaultSpec({ rootless: args.rootless === true }), null, "\t")}\n`, { flag: "wx" });
  },
});
