// verb → lazily imported command module (one file per verb)
import type { CommandDef } from "citty";
import type { ParseOptions } from "../argv.ts";

export interface VerbModule {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  default: CommandDef<any>;
  parse?: ParseOptions;
}

export const commands: Record<string, () => Promise<VerbModule>> = {
  create: () => import("./create.ts"),
  start: () => import("./start.ts"),
  state: () => import("./state.ts"),
  kill: () => import("./kill.ts"),
  delete: () => import("./delete.ts"),
  run: () => import("./run.ts"),
  exec: () => import("./exec.ts"),
  pause: () => import("./pause.ts"),
  resume: () => import("./resume.ts"),
  ps: () => import("./ps.ts"),
  list: () => import("./list.ts"),
  update: () => import("./update.ts"),
  events: () => import("./events.ts"),
  spec: () => import("./spec.ts"),
  features: () => import("./features.ts"),
  version: () => import("./version.ts"),
  route: () => import("./route.ts"),
  health: () => import("./health.ts"),
  doctor: () => import("./health.ts"),
  demo: () => import("./demo.ts"),
  snapshot: () => import("./snapshot.ts"),
  checkpoint: () => import("./checkpoint.ts"),
  restore: () => import("./restore.ts"),
  serve: () => import("./serve.ts"),
  tenant: () => import("./tenant.ts"),
  token: () => import("./token.ts"),
  port: () => import("./port.ts"),
};
