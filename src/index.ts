// Library entry for ops scripts: `import { Runtime } from "nexcage"` drives the same code as the CLI.
export { Runtime, type CreateArgs, type ExecArgs, type RuntimeOptions } from "./runtime.ts";
export { NexcageError, ExitCode } from "./core/errors.ts";
export { loadConfig, parseConfig, type NexcageConfig } from "./core/config.ts";
export { route, type RouteDecision } from "./router/router.ts";
export type { OciState } from "./oci/state.ts";
export type { Backend, BackendName, ContainerRecord, Status, ProbeResult } from "./backends/types.ts";
