// The HTTP surface (hono: a small, well-kept router on web-standard Request/Response that Bun serves
// natively). Every route is declared once with its schema: the declaration registers the handler and feeds the
// OpenAPI document. Around every route: metrics, bearer auth (all but /healthz), per-tenant rate and
// concurrency limits, a JSON body limit, and an audit row for every mutating call.
import { Hono, type Context } from "hono";
import type { GenericSchema } from "valibot";
import { log } from "../core/log.ts";
import { parseWith } from "../core/validate.ts";
import type { ServerDb } from "../db/db.ts";
import { ApiError, toApiError } from "./errors.ts";
import { wsExec, type ExecService } from "./exec.ts";
import * as files from "./files.ts";
import type { TenantLimits } from "./limits.ts";
import type { Metrics } from "./metrics.ts";
import { openApiDocument, type RouteDoc } from "./openapi.ts";
import type { Principal, SandboxService } from "./sandboxes.ts";
import * as S from "./schemas.ts";
import { parseSize } from "./units.ts";

export interface AppDeps {
  db: ServerDb;
  sandboxes: SandboxService;
  execs: ExecService;
  metrics: Metrics;
  limits: TenantLimits;
  /** host health as data (backends, storage, capacity) */
  health: () => Promise<unknown>;
  version: string;
  /** largest JSON request body, bytes */
  maxBody: number;
  /** largest file upload, bytes */
  maxUpload: number;
}

type Vars = { p: Principal; audit: { target?: string; action?: string } };
type C = Context<{ Variables: Vars }>;
type Handler = (c: C, body: any) => Promise<Response> | Response;

const MUTATING = new Set(["POST", "PUT", "DELETE", "PATCH"]);

export function buildApp(d: AppDeps): { app: Hono<{ Variables: Vars }>; routes: RouteDoc[] } {
  const app = new Hono<{ Variables: Vars }>();
  const routes: RouteDoc[] = [];

  app.onError((e, c) => {
    const { status, body, headers } = toApiError(e);
    if (status >= 500) log().error(`${c.req.method} ${c.req.path}: ${(e as Error).message}`);
    return c.json(body, status as 400, headers);
  });
  app.notFound((c) => c.json({ error: { code: "notFound", message: `no route ${c.req.method} ${c.req.path}` } }, 404));

  // metrics for every request, labelled by the route pattern (never by ids: bounded label values)
  app.use("*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const route = c.req.routePath || "unmatched";
    d.metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    d.metrics.requestSeconds.observe({ method: c.req.method, route }, (performance.now() - t0) / 1000);
  });

  // auth, limits and audit for everything but the liveness probe
  app.use("*", async (c, next) => {
    if (c.req.path === "/healthz") return next();
    const auth = c.req.header("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m) throw new ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer nxc_...)", { "www-authenticate": 'Bearer realm="nexcage"' });
    const r = d.db.authenticate(m[1] as string);
    if (!r.ok) throw new ApiError(401, "unauthorized", r.why, { "www-authenticate": 'Bearer realm="nexcage", error="invalid_token"' });
    const p: Principal = { tokenId: r.token.id, tenantId: r.token.tenantId, tenant: r.token.tenant, admin: r.token.admin };
    c.set("p", p);
    c.set("audit", {});
    const key = p.tenant ?? `admin:${p.tokenId}`;
    d.limits.take(key);
    if (!MUTATING.has(c.req.method)) return next();
    const release = d.limits.enter(key);
    let status = 500;
    let result = "error";
    try {
      await next();
      status = c.res.status;
      result = status < 400 ? "ok" : ((await c.res.clone().json().catch(() => undefined)) as { error?: { code?: string } } | undefined)?.error?.code ?? "error";
    } catch (e) {
      const api = toApiError(e);
      status = api.status;
      result = api.body.error.code;
      throw e;
    } finally {
      const a = c.get("audit");
      try {
        d.db.audit({ tokenId: p.tokenId, tenant: p.tenant, action: a.action ?? `${c.req.method} ${c.req.routePath}`, target: a.target ?? c.req.param("id") ?? null, status, result });
      } catch (e) {
        log().error(`audit: ${(e as Error).message}`);
      }
      // a streamed answer (exec) keeps its slot until the stream ends
      if (c.res.body && c.res.headers.get("content-type")?.includes("ndjson")) {
        const body = c.res.body.pipeThrough(new TransformStream({ flush: release }));
        const reader = body.getReader();
        c.res = new Response(
          new ReadableStream({
            async pull(ctl) {
              const { done, value } = await reader.read();
              if (done) ctl.close();
              else ctl.enqueue(value);
            },
            cancel(reason) {
              release();
              return reader.cancel(reason);
            },
          }),
          c.res,
        );
      } else release();
    }
  });

  const body = async (c: C, schema: GenericSchema | undefined): Promise<unknown> => {
    if (!schema) return undefined;
    const len = Number(c.req.header("content-length") ?? 0);
    if (len > d.maxBody) throw new ApiError(413, "payloadTooLarge", `request body of ${len} bytes exceeds the limit of ${d.maxBody}`);
    const text = await c.req.text();
    if (text.length > d.maxBody) throw new ApiError(413, "payloadTooLarge", `request body exceeds the limit of ${d.maxBody} bytes`);
    let json: unknown = undefined;
    if (text.trim()) {
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new ApiError(400, "badRequest", `request body: invalid JSON: ${(e as Error).message}`);
      }
    }
    return parseWith(schema, json, "request body");
  };

  const route = (r: RouteDoc, h: Handler) => {
    routes.push(r);
    app.on(r.method.toUpperCase(), r.path, async (c) => {
      const p = c.get("p");
      if (r.auth === "admin" && !p?.admin) throw new ApiError(403, "forbidden", "this needs an admin token");
      return h(c as C, await body(c as C, r.body === "binary" ? undefined : r.body));
    });
  };
  const principal = (c: C) => c.get("p");
  const q = (c: C, name: string): string => {
    const v = c.req.query(name);
    if (v === undefined || v === "") throw new ApiError(400, "badRequest", `query parameter ${name} is required`);
    return v;
  };
  const intQ = (c: C, name: string, dflt: number): number => {
    const v = c.req.query(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new ApiError(400, "badRequest", `query parameter ${name}: want a non-negative integer`);
    return n;
  };
  const rootfsOf = (c: C) => {
    const row = d.sandboxes.own(principal(c), c.req.param("id") as string);
    d.db.touchSandbox(row.id);
    return `${row.bundle}/rootfs`;
  };

  // ---- service
  route({ method: "get", path: "/healthz", summary: "liveness (no token)", tag: "service", auth: "none", response: "json" }, (c) => c.json({ ok: true }));
  route({ method: "get", path: "/metrics", summary: "Prometheus metrics", tag: "service", auth: "admin", response: "text" }, async (c) => {
    return c.body(await d.metrics.text(), 200, { "content-type": d.metrics.contentType });
  });
  route({ method: "get", path: "/v1/openapi.json", summary: "this document", tag: "service", auth: "token", response: "json" }, (c) => c.json(openApiDocument(routes, d.version)));
  route({ method: "get", path: "/v1/health", summary: "host health: backends, capacity, usage", tag: "service", auth: "token", response: "json" }, async (c) => c.json(await d.health()));
  route({ method: "get", path: "/v1/images", summary: "images on this host", tag: "service", auth: "token", response: "json" }, (c) => c.json({ images: d.sandboxes.o.images.list() }));
  route(
    { method: "get", path: "/v1/usage", summary: "the tenant's quotas and usage", tag: "tenants", auth: "token", response: "json", query: { tenant: { description: "admin tokens: which tenant" } } },
    (c) => {
      const p = principal(c);
      const id = d.sandboxes.tenantFor(p, c.req.query("tenant") ?? p.tenant ?? undefined);
      const t = d.db.tenantById(id);
      return c.json({ tenant: t?.name, quotas: t && quotasOf(t), usage: d.db.usage(id) });
    },
  );

  // ---- tenants (admin)
  route({ method: "get", path: "/v1/tenants", summary: "tenants with quotas and usage", tag: "tenants", auth: "admin", response: "json" }, (c) =>
    c.json({ tenants: d.db.tenants().map((t) => ({ name: t.name, created: t.created, quotas: quotasOf(t), usage: d.db.usage(t.id) })) }),
  );
  route({ method: "post", path: "/v1/tenants", summary: "add a tenant", tag: "tenants", auth: "admin", body: S.TenantBody, response: "json", status: 201 }, (c, b: S.TenantBodyT) => {
    const t = d.db.addTenant(b.name, quotaInput(b.quotas ?? {}));
    c.get("audit").target = t.name;
    return c.json({ name: t.name, quotas: quotasOf(t) }, 201);
  });
  route({ method: "patch", path: "/v1/tenants/:name", summary: "change a tenant's quotas (null: unlimited)", tag: "tenants", auth: "admin", body: S.QuotaBody, response: "json" }, (c, b: S.QuotaBodyT) => {
    const t = d.db.setQuotas(c.req.param("name") as string, quotaInput(b));
    c.get("audit").target = t.name;
    return c.json({ name: t.name, quotas: quotasOf(t) });
  });
  route({ method: "get", path: "/v1/audit", summary: "the audit log, newest first", tag: "tenants", auth: "admin", response: "json", query: { tenant: { description: "only this tenant's" }, limit: { description: "at most this many (1000)" } } }, (c) => {
    const tenant = c.req.query("tenant");
    return c.json({ entries: d.db.auditLog({ ...(tenant ? { tenant } : {}), limit: intQ(c, "limit", 100) }) });
  });

  // ---- sandboxes
  route({ method: "post", path: "/v1/sandboxes", summary: "create a sandbox from an image or a snapshot; answers once it runs", tag: "sandboxes", auth: "token", body: S.CreateSandbox, response: "json", status: 201 }, async (c, b) => {
    const sb = await d.sandboxes.create(principal(c), b);
    c.get("audit").target = sb.id;
    return c.json(sb, 201);
  });
  route({ method: "get", path: "/v1/sandboxes", summary: "the caller's sandboxes (admin: all, or ?tenant=)", tag: "sandboxes", auth: "token", response: "json", query: { tenant: { description: "admin tokens: only this tenant's" } } }, async (c) =>
    c.json({ sandboxes: await d.sandboxes.list(principal(c), c.req.query("tenant")) }),
  );
  route({ method: "get", path: "/v1/sandboxes/:id", summary: "one sandbox", tag: "sandboxes", auth: "token", response: "json" }, async (c) => c.json(await d.sandboxes.get(principal(c), c.req.param("id") as string)));
  route({ method: "delete", path: "/v1/sandboxes/:id", summary: "delete a sandbox (its snapshots and files go with it; its quota is released)", tag: "sandboxes", auth: "token", response: "none" }, async (c) => {
    await d.sandboxes.delete(principal(c), c.req.param("id") as string);
    return c.body(null, 204);
  });
  for (const verb of ["pause", "resume", "stop", "start"] as const) {
    const summary = { pause: "freeze every process", resume: "thaw", stop: "kill every process (files and reservation kept)", start: "run a stopped sandbox again" }[verb];
    route({ method: "post", path: `/v1/sandboxes/:id/${verb}`, summary, tag: "sandboxes", auth: "token", response: "json" }, async (c) => c.json(await d.sandboxes[verb](principal(c), c.req.param("id") as string)));
  }
  route({ method: "post", path: "/v1/sandboxes/:id/ttl", summary: "extend or change the idle TTL (the clock starts again)", tag: "sandboxes", auth: "token", body: S.ExtendTtl, response: "json" }, (c, b) =>
    c.json(d.sandboxes.extendTtl(principal(c), c.req.param("id") as string, b)),
  );
  route({ method: "get", path: "/v1/sandboxes/:id/stats", summary: "cpu, memory, pids (as runc events --stats)", tag: "sandboxes", auth: "token", response: "json" }, async (c) =>
    c.json(await d.sandboxes.stats(principal(c), c.req.param("id") as string)),
  );

  // ---- exec
  route({ method: "post", path: "/v1/sandboxes/:id/exec", summary: "run a command: NDJSON events stream (stdout, stderr, exit); background: an exec id", tag: "exec", auth: "token", body: S.Exec, response: "ndjson" }, async (c, b: S.ExecBody) => {
    const p = principal(c);
    const id = c.req.param("id") as string;
    if (b.background) return c.json(await d.execs.background(p, id, b), 202);
    const stream = await d.execs.stream(p, id, b);
    return new Response(stream, { status: 200, headers: { "content-type": "application/x-ndjson", "cache-control": "no-store", "x-content-type-options": "nosniff" } });
  });
  route({ method: "get", path: "/v1/sandboxes/:id/exec/ws", summary: "interactive exec over a WebSocket: first message the request, then stdin (binary, or {type:stdin|eof}); events back as text messages", tag: "exec", auth: "token", response: "none", status: 101 }, (c) => {
    const p = principal(c);
    const id = c.req.param("id") as string;
    d.sandboxes.own(p, id);
    const srv = c.env as { upgrade?: (req: Request, o: { data: unknown }) => boolean } | undefined;
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket" || !srv?.upgrade) throw new ApiError(400, "badRequest", "this route needs a WebSocket upgrade");
    // a WebSocket exec is an operation like a POST: it holds a slot and is audited
    const release = d.limits.enter(p.tenant ?? `admin:${p.tokenId}`);
    d.db.audit({ tokenId: p.tokenId, tenant: p.tenant, action: "WS /v1/sandboxes/:id/exec/ws", target: id, status: 101, result: "ok" });
    const handler = wsExec(d.execs, p, id, (json) => parseWith(S.Exec, json, "exec request"), release);
    if (!srv.upgrade(c.req.raw, { data: handler })) {
      release();
      throw new ApiError(400, "badRequest", "WebSocket upgrade failed");
    }
    return new Response(null);
  });
  route({ method: "get", path: "/v1/sandboxes/:id/execs", summary: "background execs", tag: "exec", auth: "token", response: "json" }, (c) => c.json({ execs: d.execs.list(principal(c), c.req.param("id") as string) }));
  route({ method: "get", path: "/v1/sandboxes/:id/execs/:exec", summary: "a background exec: running, exit code, output sizes", tag: "exec", auth: "token", response: "json" }, (c) =>
    c.json(d.execs.info(principal(c), c.req.param("id") as string, c.req.param("exec") as string)),
  );
  for (const stream of ["stdout", "stderr"] as const) {
    route(
      { method: "get", path: `/v1/sandboxes/:id/execs/:exec/${stream}`, summary: `a background exec's ${stream} from an offset (header x-next-offset)`, tag: "exec", auth: "token", response: "binary", query: { offset: { description: "byte offset (0)" }, limit: { description: "bytes (1 MiB)" } } },
      (c) => {
        const out = d.execs.output(principal(c), c.req.param("id") as string, c.req.param("exec") as string, stream, intQ(c, "offset", 0), Math.min(intQ(c, "limit", 1 << 20), 16 << 20));
        return c.body(new Uint8Array(out.data), 200, { "content-type": "application/octet-stream", "x-next-offset": String(out.next), "x-total-size": String(out.size) });
      },
    );
  }
  route({ method: "post", path: "/v1/sandboxes/:id/execs/:exec/kill", summary: "kill a background exec", tag: "exec", auth: "token", response: "json" }, (c) => {
    d.execs.kill(principal(c), c.req.param("id") as string, c.req.param("exec") as string);
    return c.json({ killed: true });
  });

  // ---- files
  const pathQ = { path: { description: "absolute path inside the sandbox", required: true } };
  route({ method: "get", path: "/v1/sandboxes/:id/files", summary: "list a directory", tag: "files", auth: "token", response: "json", query: pathQ }, (c) => c.json({ entries: files.list(rootfsOf(c), q(c, "path")) }));
  route({ method: "get", path: "/v1/sandboxes/:id/files/stat", summary: "one entry", tag: "files", auth: "token", response: "json", query: pathQ }, (c) => c.json(files.stat(rootfsOf(c), q(c, "path"))));
  route({ method: "get", path: "/v1/sandboxes/:id/files/content", summary: "download a file (streamed)", tag: "files", auth: "token", response: "binary", query: pathQ }, (c) => {
    const f = files.read(rootfsOf(c), q(c, "path"));
    return new Response(f.stream, { status: 200, headers: { "content-type": "application/octet-stream", "content-length": String(f.size) } });
  });
  route(
    { method: "put", path: "/v1/sandboxes/:id/files/content", summary: "upload a file (streamed; parents created; replaced atomically)", tag: "files", auth: "token", body: "binary", response: "json", query: { ...pathQ, mode: { description: "octal permissions (0644)" } } },
    async (c) => {
      const modeQ = c.req.query("mode");
      if (modeQ !== undefined && !/^0?[0-7]{3,4}$/.test(modeQ)) throw new ApiError(400, "badRequest", "query parameter mode: want octal permissions such as 0644");
      const len = Number(c.req.header("content-length") ?? 0);
      if (len > d.maxUpload) throw new ApiError(413, "payloadTooLarge", `upload of ${len} bytes exceeds the limit of ${d.maxUpload}`);
      const rootfs = rootfsOf(c);
      return c.json(await files.write(rootfs, q(c, "path"), c.req.raw.body, { maxBytes: d.maxUpload, ...(modeQ ? { mode: Number.parseInt(modeQ, 8) } : {}) }), 201);
    },
  );
  route({ method: "post", path: "/v1/sandboxes/:id/files/mkdir", summary: "make a directory (and its parents)", tag: "files", auth: "token", response: "json", query: pathQ }, (c) => c.json(files.mkdir(rootfsOf(c), q(c, "path")), 201));
  route({ method: "delete", path: "/v1/sandboxes/:id/files", summary: "remove a file, a symlink or an empty directory", tag: "files", auth: "token", response: "none", query: pathQ }, (c) => {
    files.remove(rootfsOf(c), q(c, "path"));
    return c.body(null, 204);
  });

  // ---- snapshots
  route({ method: "post", path: "/v1/sandboxes/:id/snapshots", summary: "snapshot the sandbox's files (frozen for the instant of it)", tag: "snapshots", auth: "token", body: S.CreateSnapshot, response: "json", status: 201 }, async (c, b) =>
    c.json(await d.sandboxes.snapshotCreate(principal(c), c.req.param("id") as string, b?.name), 201),
  );
  route({ method: "get", path: "/v1/sandboxes/:id/snapshots", summary: "the sandbox's snapshots", tag: "snapshots", auth: "token", response: "json" }, async (c) =>
    c.json({ snapshots: await d.sandboxes.snapshotList(principal(c), c.req.param("id") as string) }),
  );
  route({ method: "post", path: "/v1/sandboxes/:id/snapshots/:name/verify", summary: "re-hash a snapshot against its manifest", tag: "snapshots", auth: "token", response: "json" }, async (c) =>
    c.json(await d.sandboxes.snapshotVerify(principal(c), c.req.param("id") as string, c.req.param("name") as string)),
  );
  route({ method: "post", path: "/v1/sandboxes/:id/snapshots/:name/restore", summary: "restore the sandbox to a snapshot (a running sandbox is restarted)", tag: "snapshots", auth: "token", response: "json" }, async (c) =>
    c.json(await d.sandboxes.snapshotRestore(principal(c), c.req.param("id") as string, c.req.param("name") as string)),
  );
  route({ method: "delete", path: "/v1/sandboxes/:id/snapshots/:name", summary: "delete a snapshot", tag: "snapshots", auth: "token", response: "none" }, async (c) => {
    await d.sandboxes.snapshotDelete(principal(c), c.req.param("id") as string, c.req.param("name") as string);
    return c.body(null, 204);
  });

  return { app, routes };
}

function quotasOf(t: { maxSandboxes: number | null; maxVcpus: number | null; maxMemory: number | null; maxDisk: number | null; maxSnapshots: number | null }) {
  return { sandboxes: t.maxSandboxes, vcpus: t.maxVcpus, memory: t.maxMemory, disk: t.maxDisk, snapshots: t.maxSnapshots };
}

function quotaInput(b: S.QuotaBodyT) {
  const size = (v: string | number | null | undefined, what: string) => (v === undefined ? undefined : v === null ? null : parseSize(v, what));
  return {
    ...(b.sandboxes !== undefined ? { maxSandboxes: b.sandboxes } : {}),
    ...(b.vcpus !== undefined ? { maxVcpus: b.vcpus } : {}),
    ...(b.memory !== undefined ? { maxMemory: size(b.memory, "memory") as number | null } : {}),
    ...(b.disk !== undefined ? { maxDisk: size(b.disk, "disk") as number | null } : {}),
    ...(b.snapshots !== undefined ? { maxSnapshots: b.snapshots } : {}),
  };
}

