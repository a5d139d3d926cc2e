import { defineCommand } from "citty";
import { restore } from "../../checkpoint.ts";
import { idArg, processIoArgs } from "../args.ts";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "restore", description: "restore a container from a CRIU checkpoint (runc's flags), or --fs-only from a filesystem snapshot" },
  args: {
    ...idArg,
    bundle: { type: "string", alias: "b", description: "path to the root of the bundle directory" },
    "image-path": { type: "string", description: "path to criu image files for restoring" },
    "work-path": { type: "string", description: "path for saving work files and logs" },
    "tcp-established": { type: "boolean", description: "allow open tcp connections" },
    "file-locks": { type: "boolean", description: "handle file locks, for safety" },
    "manage-cgroups-mode": { type: "string", description: "cgroups mode: soft|full|strict|ignore" },
    detach: { type: "boolean", alias: "d", description: "detach from the container's process" },
    "pid-file": processIoArgs["pid-file"],
    "console-socket": processIoArgs["console-socket"],
    "fs-only": { type: "boolean", description: "no CRIU: restart the container from a filesystem snapshot" },
    snapshot: { type: "string", description: "with --fs-only: the snapshot to restore" },
  },
  async run({ args }) {
    const s = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
    const text = await restore(getRuntime(), args._[0] as string, {
      bundle: s("bundle"),
      imagePath: s("image-path"),
      workPath: s("work-path"),
      manageCgroupsMode: s("manage-cgroups-mode"),
      pidFile: s("pid-file"),
      consoleSocket: s("console-socket"),
      snapshot: s("snapshot"),
      tcpEstablished: args["tcp-established"] === true,
      fileLocks: args["file-locks"] === true,
      detach: args.detach === true,
      fsOnly: args["fs-only"] === true,
    });
    if (text) out(text);
  },
});
