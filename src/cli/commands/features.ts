import { defineCommand } from "citty";
import { implementedBackends } from "../../backends/index.ts";
import { features } from "../../oci/features.ts";
import { out } from "../context.ts";
import { VERSION } from "./version.ts";

export default defineCommand({
  meta: { name: "features", description: "print the runtime-spec features document (JSON)" },
  args: {},
  run() {
    // runc indents this one with four spaces
    out(`${JSON.stringify(features(VERSION, implementedBackends()), null, 4)}\n`);
  },
});
