// The OpenAPI document, built from the same route table and valibot schemas the server validates with
// (@valibot/to-json-schema converts the schemas), so what the document promises is what the server checks.
import { toJsonSchema } from "@valibot/to-json-schema";
import type { GenericSchema } from "valibot";

export interface RouteDoc {
  method: "get" | "post" | "put" | "delete" | "patch";
  /** hono style: /v1/sandboxes/:id */
  path: string;
  summary: string;
  tag: string;
  auth: "none" | "token" | "admin";
  body?: GenericSchema | "binary";
  query?: Record<string, { description: string; required?: boolean }>;
  /** what a success returns */
  response: "json" | "ndjson" | "binary" | "text" | "none";
  status?: number;
}

const errorSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: { code: { type: "string" }, message: { type: "string" }, exitCode: { type: "integer" } },
      required: ["code", "message"],
    },
  },
};

export function openApiDocument(routes: RouteDoc[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([a-zA-Z]+)/g, "{$1}");
    const params = [...r.path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    for (const [name, q] of Object.entries(r.query ?? {})) params.push({ name, in: "query", required: q.required ?? false, schema: { type: "string" }, description: q.description } as never);
    const ok = r.status ?? (r.response === "none" ? 204 : 200);
    const content =
      r.response === "json"
        ? { "application/json": { schema: { type: "object" } } }
        : r.response === "ndjson"
          ? { "application/x-ndjson": { schema: { type: "string", description: "one JSON event per line: started, stdout, stderr, then exit or error" } } }
          : r.response === "binary"
            ? { "application/octet-stream": { schema: { type: "string", format: "binary" } } }
            : r.response === "text"
              ? { "text/plain": { schema: { type: "string" } } }
              : undefined;
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      ...(params.length ? { parameters: params } : {}),
      responses: {
        [ok]: { description: "success", ...(content ? { content } : {}) },
        default: { description: "error", content: { "application/json": { schema: errorSchema } } },
      },
      ...(r.auth === "none" ? { security: [] } : {}),
      ...(r.auth === "admin" ? { description: "needs an admin token" } : {}),
    };
    if (r.body === "binary") op.requestBody = { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } };
    else if (r.body) op.requestBody = { required: true, content: { "application/json": { schema: toJsonSchema(r.body, { target: "openapi-3.0", errorMode: "ignore" }) } } };
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: "3.0.3",
    info: { title: "nexcage sandbox API", version, description: "Sandboxes (containers, gVisor, microVMs) per tenant, with quotas. Errors carry the engine's error code." },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "nxc_<id>_<secret>, from `nexcage token create`" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
