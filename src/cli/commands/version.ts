import { defineCommand } from "citty";
import { out } from "../context.ts";
import { OCI_VERSION } from "../../oci/state.ts";
import pkg from "../../../package.json" with { type: "json" };

export const VERSION = pkg.version;

/** runc's layout: `runc version X`, then `spec: Y`. */
export function versionText(): string {
  return `nexcage version ${VERSION}\nspec: ${OCI_VERSION}\nbackends: crun (libcrun), runc\n`;
}

export default defineCommand({
  meta: { name: "version", description: "print the version" },
  args: {},
  run() {
    out(versionText());
  },
});
