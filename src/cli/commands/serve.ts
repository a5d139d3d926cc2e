import { defineCommand } from "citty";
import { dirname } from "node:path";
import { DEFAULT_DB } from "../../db/db.ts";
import { RuntimeEngine } from "../../server/engine.ts";
import { DEFAULT_SOCKET, parseListen } from "../../server/listen.ts";
import { parseSize } from "../../server/units.ts";
import { NexcageError } from "../../core/errors.ts";
import { getRuntime, global, globalFlag, out, str } from "../context.ts";
import { selfArgv } from "../../server/self.ts";

export default defineCommand({
  meta: { name: "serve", description: "the sandbox API: tenants, quotas, sandboxes, exec, files, snapshots, metrics" },
  args: {
    listen: { type: "string", description: `unix:PATH or HOST:PORT (default unix:${DEFAULT_SOCKET}; TCP needs TLS or a loopback address)` },
    db: { type: "string", description: `the server's database (default ${DEFAULT_DB})` },
    data: { type: "string", description: "sandbox bundles, exec output, image cache (default: the database's directory)" },
    images: { type: "string", description: "where images are looked up by name (default: <data>/images-available)" },
    "tls-cert": { type: "string", description: "PEM certificate for HTTPS" },
    "tls-key": { type: "string", description: "PEM key for HTTPS" },
    insecure: { type: "boolean", description: "allow plain HTTP on a non-loopback address (tokens travel in clear text)" },
    overcommit: { type: "string", description: "host capacity multiplier for vCPUs, memory and disk (default 1)" },
    "host-vcpus": { type: "string", description: "host vCPUs to hand out (default: the cores)" },
    "host-memory": { type: "string", description: "host memory to hand out (default: all RAM)" },
    "host-disk": { type: "string", description: "disk to hand out (default: the data filesystem's size)" },
    rate: { type: "string", description: "requests per second per tenant (default 50)" },
    burst: { type: "string", description: "burst above the rate (default 200)" },
    "max-concurrent": { type: "string", description: "operations in flight per tenant (default 16)" },
    "max-upload": { type: "string", description: "largest file upload (default 1G)" },
  },
  async run({ args }) {
    const num = (v: unknown, name: string, min: number) => {
      if (str(v) === undefined) return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) throw new NexcageError("usage", `invalid --${name} ${JSON.stringify(v)}: want a number >= ${min}`);
      return n;
    };
    const dbPath = str(args.db) ?? DEFAULT_DB;
    const dataDir = str(args.data) ?? dirname(dbPath);
    const certs = [str(args["tls-cert"]), str(args["tls-key"])];
    if (certs.filter(Boolean).length === 1) throw new NexcageError("usage", "--tls-cert and --tls-key go together");
    const rt = getRuntime();
    const { startServer } = await import("../../server/server.ts");
    const { VERSION } = await import("./version.ts");
    const server = await startServer({
      listen: parseListen(str(args.listen) ?? `unix:${DEFAULT_SOCKET}`),
      dbPath,
      dataDir,
      imagesDir: str(args.images) ?? `${dataDir}/images-available`,
      engine: new RuntimeEngine(rt, selfArgv({ root: rt.root, config: global("config"), systemdCgroup: globalFlag("systemd-cgroup") })),
      health: async () => {
        const { getBackend, implementedBackends } = await import("../../backends/index.ts");
        await rt.getConfig().catch(() => undefined);
        return Promise.all(implementedBackends().map(async (b) => (await getBackend(b)).probe(rt.context(b))));
      },
      ...(certs[0] && certs[1] ? { tls: { cert: certs[0], key: certs[1] } } : {}),
      insecure: args.insecure === true,
      ...(num(args.overcommit, "overcommit", 0.1) !== undefined ? { overcommit: num(args.overcommit, "overcommit", 0.1) as number } : {}),
      capacity: {
        ...(num(args["host-vcpus"], "host-vcpus", 0) !== undefined ? { vcpus: num(args["host-vcpus"], "host-vcpus", 0) as number } : {}),
        ...(str(args["host-memory"]) ? { memory: parseSize(args["host-memory"] as string, "--host-memory") } : {}),
        ...(str(args["host-disk"]) ? { disk: parseSize(args["host-disk"] as string, "--host-disk") } : {}),
      },
      limits: {
        ...(num(args.rate, "rate", 0.01) !== undefined ? { rate: num(args.rate, "rate", 0.01) as number } : {}),
        ...(num(args.burst, "burst", 1) !== undefined ? { burst: num(args.burst, "burst", 1) as number } : {}),
        ...(num(args["max-concurrent"], "max-concurrent", 1) !== undefined ? { concurrent: num(args["max-concurrent"], "max-concurrent", 1) as number } : {}),
      },
      ...(str(args["max-upload"]) ? { maxUpload: parseSize(args["max-upload"] as string, "--max-upload") } : {}),
      version: VERSION,
      say: (line) => out(`${line}\n`, 2),
    });
    // serve until told to stop; a second signal while stopping is left to its default (exit at once)
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        resolve();
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
    out("nexcage serve: stopping\n", 2);
    await server.stop();
    return 0;
  },
});
