// Picks a backend for a container: the org.nexcage.backend annotation (when allowed), then the ordered
// routing rules, then the default. Every decision carries a human reason for `nexcage route`.
import { BACKEND_NAMES, type BackendName } from "../backends/types.ts";
import { BACKEND_ANNOTATION, type NexcageConfig, type RoutingRule } from "../core/config.ts";
import { NexcageError } from "../core/errors.ts";

export interface RouteDecision {
  backend: BackendName;
  /** "annotation" | "rule" | "default" */
  by: "annotation" | "rule" | "default";
  rule?: { index: number; name?: string; rule: RoutingRule };
  reason: string;
}

/** Glob unless the pattern starts with ^ or ends with $ (then a regex): the convention NexCage always had. */
export function compilePattern(pattern: string): RegExp {
  if (pattern.startsWith("^") || pattern.endsWith("$")) {
    try {
      return new RegExp(pattern);
    } catch (e) {
      throw new NexcageError("invalidSpec", `invalid routing pattern ${JSON.stringify(pattern)}: ${(e as Error).message}`);
    }
  }
  let re = "^";
  for (const ch of pattern) {
    if (ch === "*") re += ".*";
    else if (ch === "?") re += ".";
    else re += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`${re}$`);
}

export function route(config: NexcageConfig, id: string, annotations: Record<string, string> = {}): RouteDecision {
  const pinned = annotations[BACKEND_ANNOTATION];
  if (pinned !== undefined && config.annotationOverride) {
    if (!(BACKEND_NAMES as readonly string[]).includes(pinned)) {
      throw new NexcageError("invalidSpec", `invalid config.json: annotations.${BACKEND_ANNOTATION}: unknown backend "${pinned}" (known: ${BACKEND_NAMES.join(", ")})`);
    }
    return { backend: pinned as BackendName, by: "annotation", reason: `annotation ${BACKEND_ANNOTATION}=${pinned}` };
  }
  for (const [index, rule] of config.routing.entries()) {
    const why: string[] = [];
    if (rule.id !== undefined) {
      if (!compilePattern(rule.id).test(id)) continue;
      why.push(`id ${JSON.stringify(id)} matches ${JSON.stringify(rule.id)}`);
    }
    if (rule.annotation !== undefined) {
      const val = annotations[rule.annotation];
      if (val === undefined) continue;
      if (rule.value !== undefined && !compilePattern(rule.value).test(val)) continue;
      why.push(`annotation ${rule.annotation}=${JSON.stringify(val)}${rule.value !== undefined ? ` matches ${JSON.stringify(rule.value)}` : ""}`);
    }
    const label = rule.name ? ` (${rule.name})` : "";
    return { backend: rule.backend, by: "rule", rule: { index, ...(rule.name ? { name: rule.name } : {}), rule }, reason: `rule #${index + 1}${label}: ${why.join(" and ")}` };
  }
  return { backend: config.defaultBackend, by: "default", reason: `no rule matched; default backend of ${config.source}` };
}
