import { defineCommand } from "citty";
import { checkpoint } from "../../checkpoint.ts";
import { idArg } from "../args.ts";
import { getRuntime, out } from "../context.ts";

export default defineCommand({
  meta: { name: "checkpoint", description: "checkpoint a running container with CRIU (runc's flags), or --fs-only: a filesystem snapshot" },
  args: {
    ...idArg,
    "image-path": { type: "string", description: "path for saving criu image files" },
    "work-path": { type: "string", description: "path for saving work files and logs" },
    "parent-path": { type: "string", description: "path for previous criu image files in pre-dump" },
    "leave-running": { type: "boolean", description: "leave the process running after checkpointing" },
    "tcp-established": { type: "boolean", description: "allow open tcp connections" },
    "file-locks": { type: "boolean", description: "handle file locks, for safety" },
    "pre-dump": { type: "boolean", description: "dump container's memory information only, leave the container running after this" },
    "manage-cgroups-mode": { type: "string", description: "cgroups mode: soft|full|strict|ignore" },
    "fs-only": { type: "boolean", description: "no CRIU: take a filesystem snapshot of the rootfs instead" },
  },
  async run({ args }) {
    const s = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
    const text = await checkpoint(getRuntime(), args._[0] as string, {
      imagePath: s("image-path"),
      workPath: s("work-path"),
      parentPath: s("parent-path"),
      manageCgroupsMode: s("manage-cgroups-mode"),
      leaveRunning: args["leave-running"] === true,
      tcpEstablished: args["tcp-established"] === true,
      fileLocks: args["file-locks"] === true,
      preDump: args["pre-dump"] === true,
      fsOnly: args["fs-only"] === true,
    });
    if (text) out(text);
  },
});
