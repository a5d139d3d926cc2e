// OCI runtime-spec (1.x) config.json, validated with valibot before anything is created.
// Objects are "loose": unknown keys pass through untouched (backends hand the file to crun/runc as is),
// but every field nexcage or a backend relies on is checked for type and range.
import * as v from "valibot";
import { NexcageError } from "../core/errors.ts";
import { parseWith, readJsonFile } from "../core/validate.ts";

const uint = v.pipe(v.number(), v.integer(), v.minValue(0));
const int = v.pipe(v.number(), v.integer());
const str = v.string();
const strList = v.array(str);
const strMap = v.record(v.string(), v.string());

const envList = v.array(v.pipe(str, v.regex(/^[^=]+=/, "must be KEY=value")));
const nonEmptyArgs = v.pipe(strList, v.minLength(1, "must name at least the program to run"));

export const UserSchema = v.looseObject({
  uid: uint,
  gid: uint,
  umask: v.optional(uint),
  additionalGids: v.optional(v.array(uint)),
  username: v.optional(str),
});

const CapsSchema = v.looseObject({
  bounding: v.optional(strList),
  effective: v.optional(strList),
  inheritable: v.optional(strList),
  permitted: v.optional(strList),
  ambient: v.optional(strList),
});

export const ProcessSchema = v.looseObject({
  terminal: v.optional(v.boolean()),
  consoleSize: v.optional(v.looseObject({ height: uint, width: uint })),
  user: UserSchema,
  args: v.optional(nonEmptyArgs),
  commandLine: v.optional(str),
  env: v.optional(envList),
  cwd: v.pipe(str, v.startsWith("/", "must be an absolute path")),
  capabilities: v.optional(CapsSchema),
  rlimits: v.optional(v.array(v.looseObject({ type: v.pipe(str, v.startsWith("RLIMIT_")), hard: uint, soft: uint }))),
  noNewPrivileges: v.optional(v.boolean()),
  apparmorProfile: v.optional(str),
  oomScoreAdj: v.optional(int),
  selinuxLabel: v.optional(str),
});

const HookSchema = v.looseObject({
  path: v.pipe(str, v.startsWith("/", "must be an absolute path")),
  args: v.optional(strList),
  env: v.optional(envList),
  timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1, "must be positive"))),
});
const hookList = v.optional(v.array(HookSchema));
export const HooksSchema = v.looseObject({
  prestart: hookList,
  createRuntime: hookList,
  createContainer: hookList,
  startContainer: hookList,
  poststart: hookList,
  poststop: hookList,
});

const MountSchema = v.looseObject({
  destination: str,
  type: v.optional(str),
  source: v.optional(str),
  options: v.optional(strList),
});

const IdMapSchema = v.looseObject({ containerID: uint, hostID: uint, size: uint });

const NAMESPACE_TYPES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"] as const;

export const ResourcesSchema = v.looseObject({
  devices: v.optional(
    v.array(
      v.looseObject({
        allow: v.boolean(),
        type: v.optional(v.picklist(["a", "b", "c", "u", "p"])),
        major: v.optional(v.nullable(int)),
        minor: v.optional(v.nullable(int)),
        access: v.optional(v.pipe(str, v.regex(/^[rwm]*$/, "must be a combination of r, w, m"))),
      }),
    ),
  ),
  memory: v.optional(
    v.looseObject({
      limit: v.optional(int),
      reservation: v.optional(int),
      swap: v.optional(int),
      kernel: v.optional(int),
      kernelTCP: v.optional(int),
      swappiness: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100))),
      disableOOMKiller: v.optional(v.boolean()),
      useHierarchy: v.optional(v.boolean()),
      checkBeforeUpdate: v.optional(v.boolean()),
    }),
  ),
  cpu: v.optional(
    v.looseObject({
      shares: v.optional(uint),
      quota: v.optional(int),
      burst: v.optional(uint),
      period: v.optional(uint),
      realtimeRuntime: v.optional(int),
      realtimePeriod: v.optional(uint),
      cpus: v.optional(str),
      mems: v.optional(str),
      idle: v.optional(int),
    }),
  ),
  pids: v.optional(v.looseObject({ limit: int })),
  blockIO: v.optional(v.looseObject({ weight: v.optional(uint) })),
  hugepageLimits: v.optional(v.array(v.looseObject({ pageSize: str, limit: uint }))),
  network: v.optional(v.looseObject({})),
  rdma: v.optional(v.record(str, v.looseObject({}))),
  unified: v.optional(strMap),
});

const LinuxSchema = v.looseObject({
  namespaces: v.optional(
    v.array(v.looseObject({ type: v.picklist(NAMESPACE_TYPES, `must be one of ${NAMESPACE_TYPES.join(", ")}`), path: v.optional(str) })),
  ),
  uidMappings: v.optional(v.array(IdMapSchema)),
  gidMappings: v.optional(v.array(IdMapSchema)),
  devices: v.optional(
    v.array(
      v.looseObject({
        type: v.picklist(["c", "b", "u", "p"]),
        path: v.pipe(str, v.startsWith("/")),
        major: v.optional(int),
        minor: v.optional(int),
        fileMode: v.optional(uint),
        uid: v.optional(uint),
        gid: v.optional(uint),
      }),
    ),
  ),
  cgroupsPath: v.optional(str),
  resources: v.optional(ResourcesSchema),
  sysctl: v.optional(strMap),
  seccomp: v.optional(v.looseObject({ defaultAction: str })),
  rootfsPropagation: v.optional(v.picklist(["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable", ""])),
  maskedPaths: v.optional(strList),
  readonlyPaths: v.optional(strList),
  mountLabel: v.optional(str),
});

export const SpecSchema = v.looseObject({
  ociVersion: v.pipe(str, v.regex(/^1\.\d+\.\d+/, "must be a runtime-spec 1.x version such as 1.0.2")),
  process: v.optional(ProcessSchema),
  root: v.optional(v.looseObject({ path: v.pipe(str, v.minLength(1, "must not be empty")), readonly: v.optional(v.boolean()) })),
  hostname: v.optional(str),
  domainname: v.optional(str),
  mounts: v.optional(v.array(MountSchema)),
  hooks: v.optional(HooksSchema),
  annotations: v.optional(strMap),
  linux: v.optional(LinuxSchema),
});

export type Spec = v.InferOutput<typeof SpecSchema>;
export type Process = v.InferOutput<typeof ProcessSchema>;
export type Hook = v.InferOutput<typeof HookSchema>;
export type Hooks = v.InferOutput<typeof HooksSchema>;
export type Resources = v.InferOutput<typeof ResourcesSchema>;

export function parseSpec(input: unknown): Spec {
  const spec = parseWith(SpecSchema, input, "invalid config.json");
  if (!spec.process) throw new NexcageError("invalidSpec", "invalid config.json: process: is required to create a container");
  if (!spec.process.args?.length) throw new NexcageError("invalidSpec", "invalid config.json: process.args: is required");
  if (!spec.root) throw new NexcageError("invalidSpec", "invalid config.json: root: is required");
  return spec;
}

export async function loadSpec(bundle: string): Promise<Spec> {
  return parseSpec(await readJsonFile(`${bundle}/config.json`, "cannot load config.json"));
}

export function parseProcess(input: unknown): Process {
  const p = parseWith(ProcessSchema, input, "invalid process.json");
  if (!p.args?.length && !p.commandLine) throw new NexcageError("invalidSpec", "invalid process.json: args: is required");
  return p;
}

export function parseResources(input: unknown): Resources {
  return parseWith(ResourcesSchema, input, "invalid resources");
}
