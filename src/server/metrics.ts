// Prometheus metrics (prom-client: the standard text format, histograms and label handling done right).
// Gauges that describe state (sandboxes by state and backend, quota usage) are computed from the database at
// scrape time, so they can never disagree with it; counters and histograms are fed as requests happen.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ServerDb } from "../db/db.ts";

const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<"method" | "route" | "status">;
  readonly requestSeconds: Histogram<"method" | "route">;
  readonly createSeconds: Histogram<"backend" | "result">;
  readonly execSeconds: Histogram<"backend">;

  constructor(db: ServerDb) {
    const registers = [this.registry];
    this.requests = new Counter({ name: "nexcage_http_requests_total", help: "API requests by method, route and status", labelNames: ["method", "route", "status"], registers });
    this.requestSeconds = new Histogram({ name: "nexcage_http_request_duration_seconds", help: "API request latency (until the response starts)", labelNames: ["method", "route"], buckets: LATENCY, registers });
    this.createSeconds = new Histogram({ name: "nexcage_sandbox_create_duration_seconds", help: "sandbox create latency, image to running", labelNames: ["backend", "result"], buckets: LATENCY, registers });
    this.execSeconds = new Histogram({ name: "nexcage_exec_duration_seconds", help: "exec latency, request to exit", labelNames: ["backend"], buckets: LATENCY, registers });
    new Gauge({
      name: "nexcage_sandboxes",
      help: "sandboxes by state and backend",
      labelNames: ["state", "backend"],
      registers,
      collect() {
        this.reset();
        const rows = db.db.query("SELECT state, coalesce(backend, '') AS backend, count(*) AS n FROM sandboxes GROUP BY state, backend").all() as { state: string; backend: string; n: number }[];
        for (const r of rows) this.set({ state: r.state, backend: r.backend }, r.n);
      },
    });
    new Gauge({
      name: "nexcage_quota_usage",
      help: "what each tenant holds (sandboxes, vcpus, memory and disk bytes, snapshots)",
      labelNames: ["tenant", "resource"],
      registers,
      collect() {
        this.reset();
        for (const t of db.tenants()) for (const [k, v] of Object.entries(db.usage(t.id))) this.set({ tenant: t.name, resource: k }, v);
      },
    });
    new Gauge({
      name: "nexcage_quota_limit",
      help: "each tenant's quota (absent: unlimited)",
      labelNames: ["tenant", "resource"],
      registers,
      collect() {
        this.reset();
        for (const t of db.tenants()) {
          const q = { sandboxes: t.maxSandboxes, vcpus: t.maxVcpus, memory: t.maxMemory, disk: t.maxDisk, snapshots: t.maxSnapshots };
          for (const [k, v] of Object.entries(q)) if (v !== null) this.set({ tenant: t.name, resource: k }, v);
        }
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
