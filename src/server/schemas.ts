// Request bodies of the sandbox API (valibot: every external input is parsed here, at the edge). The same
// schemas feed the OpenAPI document (src/server/openapi.ts), so the document cannot drift from the checks.
import * as v from "valibot";
import { BACKEND_NAMES } from "../backends/types.ts";

const size = v.union([v.pipe(v.number(), v.integer(), v.minValue(1)), v.pipe(v.string(), v.regex(/^\d+(\.\d+)?\s*[kKmMgGtT]?(i?[bB])?$/, "want bytes, or a number with K, M, G or T (e.g. 512M)"))]);
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const Resources = v.strictObject({
  vcpus: v.optional(v.pipe(v.number(), v.minValue(0.01), v.maxValue(1024)), undefined),
  memory: v.optional(size),
  disk: v.optional(size),
  pids: v.optional(v.pipe(v.number(), v.integer(), v.minValue(8), v.maxValue(1 << 22))),
});

export const Port = v.strictObject({
  container: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
  host: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
  protocol: v.optional(v.picklist(["tcp", "udp"]), "tcp"),
});

export const Ttl = v.strictObject({
  /** seconds without an API call on the sandbox before the action runs */
  idleSeconds: v.pipe(v.number(), v.integer(), v.minValue(10), v.maxValue(366 * 86400)),
  action: v.optional(v.picklist(["stop", "snapshot-stop"]), "stop"),
});

export const CreateSandbox = v.pipe(
  v.strictObject({
    name: v.optional(v.pipe(v.string(), v.regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, "a letter or digit, then up to 62 letters, digits, _ . or -"))),
    /** NAME[:TAG] under the server's images directory (an OCI layout, an image archive or a bundle) */
    image: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
    /** start from a snapshot of another sandbox of the same tenant instead of an image */
    fromSnapshot: v.optional(v.strictObject({ sandbox: v.string(), snapshot: v.string() })),
    /** a backend by name, or a policy that the host's routing rules map to one (annotation org.nexcage.policy) */
    backend: v.optional(v.picklist(BACKEND_NAMES)),
    policy: v.optional(v.pipe(v.string(), v.regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/))),
    resources: v.optional(Resources),
    env: v.optional(v.record(v.pipe(v.string(), v.regex(envName, "an environment variable name")), v.pipe(v.string(), v.maxLength(32768)))),
    /** the sandbox's main process; default: an idle init, commands run through exec */
    command: v.optional(v.pipe(v.array(v.string()), v.minLength(1), v.maxLength(1024))),
    cwd: v.optional(v.pipe(v.string(), v.startsWith("/"))),
    /** passed to the networking layer as the org.nexcage.network annotation */
    network: v.optional(v.pipe(v.string(), v.regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/))),
    /** passed to the networking layer as the org.nexcage.ports annotation */
    ports: v.optional(v.pipe(v.array(Port), v.maxLength(64))),
    ttl: v.optional(Ttl),
    /** admin tokens: the tenant the sandbox belongs to */
    tenant: v.optional(v.string()),
  }),
  v.check((b) => (b.image === undefined) !== (b.fromSnapshot === undefined), "give exactly one of image and fromSnapshot"),
  v.check((b) => b.backend === undefined || b.policy === undefined, "give backend or policy, not both"),
);
export type CreateSandboxBody = v.InferOutput<typeof CreateSandbox>;

export const Exec = v.strictObject({
  command: v.pipe(v.array(v.string()), v.minLength(1), v.maxLength(4096)),
  env: v.optional(v.record(v.pipe(v.string(), v.regex(envName, "an environment variable name")), v.string())),
  cwd: v.optional(v.pipe(v.string(), v.startsWith("/"))),
  user: v.optional(v.strictObject({ uid: v.pipe(v.number(), v.integer(), v.minValue(0)), gid: v.pipe(v.number(), v.integer(), v.minValue(0)) })),
  /** given to the process on stdin, then closed (utf8 text, or base64 with stdinEncoding) */
  stdin: v.optional(v.pipe(v.string(), v.maxLength(16 << 20))),
  stdinEncoding: v.optional(v.picklist(["utf8", "base64"]), "utf8"),
  /** how stdout/stderr chunks are sent: text (invalid UTF-8 replaced) or base64 (exact bytes) */
  encoding: v.optional(v.picklist(["utf8", "base64"]), "utf8"),
  /** seconds; the process is killed after it */
  timeout: v.optional(v.pipe(v.number(), v.minValue(0.1), v.maxValue(86400))),
  /** run in the background: answer at once with an exec id, keep the output for later */
  background: v.optional(v.boolean(), false),
});
export type ExecBody = v.InferOutput<typeof Exec>;

export const CreateSnapshot = v.strictObject({
  name: v.optional(v.pipe(v.string(), v.regex(/^[a-zA-Z][a-zA-Z0-9_-]{0,39}$/, "a letter, then up to 39 letters, digits, - or _"))),
});

export const ExtendTtl = v.strictObject({
  idleSeconds: v.optional(Ttl.entries.idleSeconds),
  action: v.optional(Ttl.entries.action.wrapped),
});

export const Empty = v.optional(v.strictObject({}));

const quota = <T extends GenericSchemaLike>(s: T) => v.optional(v.nullable(s));
type GenericSchemaLike = v.GenericSchema;
export const QuotaBody = v.strictObject({
  sandboxes: quota(v.pipe(v.number(), v.integer(), v.minValue(0))),
  vcpus: quota(v.pipe(v.number(), v.minValue(0))),
  memory: quota(size),
  disk: quota(size),
  snapshots: quota(v.pipe(v.number(), v.integer(), v.minValue(0))),
});
export type QuotaBodyT = v.InferOutput<typeof QuotaBody>;

export const TenantBody = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_-]{0,62}$/, "a lowercase letter, then up to 62 lowercase letters, digits, - or _")),
  quotas: v.optional(QuotaBody),
});
export type TenantBodyT = v.InferOutput<typeof TenantBody>;
