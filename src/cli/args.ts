// Arg fragments shared by several verbs (citty definitions; parsed by ./argv.ts).
export const idArg = { id: { type: "positional", description: "container id", required: true } } as const;

/** the process-spawning flags create, run and exec have in common */
export const processIoArgs = {
  "pid-file": { type: "string", description: "file to write the process pid to (before the command returns)" },
  "console-socket": { type: "string", description: "AF_UNIX socket that receives the pty master (terminal: true)" },
  "preserve-fds": { type: "string", description: "number of extra fds (from 3) to pass to the process" },
} as const;
