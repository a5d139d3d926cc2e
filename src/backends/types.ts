// The one interface every backend implements (crun, runc now; lxc, proxmox-lxc, proxmox-vm, microvm later).
// Commands never talk to a backend directly: they go through the ContainerService, which owns the
// nexcage state record, locking, validation and routing; a backend only does the container work.

import type { CgroupStats } from "../core/proc.ts";
import type { NexcageConfig } from "../core/config.ts";
import type { Spec } from "../oci/spec.ts";
import type { SnapshotDriver } from "../snapshot/drivers.ts";

export type BackendName = "crun" | "runc" | "lxc" | "proxmox-lxc" | "proxmox-vm" | "microvm";
export const BACKEND_NAMES: readonly BackendName[] = ["crun", "runc", "lxc", "proxmox-lxc", "proxmox-vm", "microvm"];

/** What nexcage persists per container (state.json under <root>/containers/<id>/). */
export interface ContainerRecord {
  id: string;
  backend: BackendName;
  bundle: string;
  rootfs: string;
  /** RFC3339Nano, UTC, as runc prints it */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  /** init pid once created; 0 before */
  pid: number;
  /** /proc/<pid>/stat start time (field 22) to guard against pid reuse */
  pidStartTime: number;
  /** set while create is in progress: a leftover record with this flag is a crashed create */
  creating?: boolean;
  /** what the backend needs to find its container again (lxcpath, monitor pid, VMID ...) */
  data?: Record<string, string | number>;
}

export interface SnapshotHooks {
  /** the container's real root filesystem */
  rootfs: string;
  /** where nexcage keeps the snapshots' metadata */
  home: string;
  driver: SnapshotDriver;
}

export interface CreateResult {
  /** the container's init pid (state's pid) */
  pid: number;
  /** the pid for the caller's --pid-file and for `run` to wait on, when it is not the init: a parent
   *  that exits with the init's status (the lxc monitor) */
  waitPid?: number;
  data?: Record<string, string | number>;
}

export type Status = "creating" | "created" | "running" | "paused" | "stopped";

/** Per-call environment a backend works in. */
export interface BackendContext {
  /** nexcage --root */
  root: string;
  /** private state dir of this backend under root (e.g. <root>/runc), created on demand */
  backendRoot: string;
  systemdCgroup: boolean;
  debug: boolean;
  /** the nexcage config, where the caller has loaded it (probes read backend settings from it) */
  config?: NexcageConfig;
}

export interface CreateOptions {
  id: string;
  config: NexcageConfig;
  bundle: string;
  spec: Spec;
  /** always set: nexcage asks the backend for its own pid file and copies it to the caller's */
  pidFile: string;
  consoleSocket?: string;
  preserveFds: number;
  noPivot: boolean;
  noNewKeyring: boolean;
}

export interface ExecOptions {
  /** path to a process.json (runtime-spec Process); the CLI writes one when the command is given inline */
  processFile: string;
  detach: boolean;
  tty: boolean;
  consoleSocket?: string;
  pidFile?: string;
  preserveFds: number;
}

export interface ProbeResult {
  backend: BackendName;
  ok: boolean;
  /** why it cannot work here, each a short lowercase sentence with the fix where there is one */
  problems: string[];
  /** versions, paths, cgroup mode ... */
  details: Record<string, string>;
}

export interface BackendCapabilities {
  /** the backend runs OCI hooks itself (crun, runc); otherwise the service runs them */
  nativeHooks: boolean;
  pause: boolean;
  update: boolean;
  exec: boolean;
}

export interface Backend {
  readonly name: BackendName;
  readonly capabilities: BackendCapabilities;
  /** never throws */
  probe(ctx: BackendContext): Promise<ProbeResult>;
  /** create the container (init waiting for start) */
  create(ctx: BackendContext, opts: CreateOptions): Promise<CreateResult>;
  /** returns the pid when starting creates the process (a VM's QEMU), else nothing */
  start(ctx: BackendContext, rec: ContainerRecord): Promise<void | number>;
  kill(ctx: BackendContext, rec: ContainerRecord, signal: number, all: boolean): Promise<void>;
  /** remove the backend's resources; with force, kill first. Must succeed on a half-created container. */
  delete(ctx: BackendContext, rec: ContainerRecord, force: boolean): Promise<void>;
  pause(ctx: BackendContext, rec: ContainerRecord): Promise<void>;
  resume(ctx: BackendContext, rec: ContainerRecord): Promise<void>;
  /** run a process in the container; returns its exit code, or 0 when detached */
  exec(ctx: BackendContext, rec: ContainerRecord, opts: ExecOptions): Promise<number>;
  /** linux.resources JSON, as `runc update --resources` takes it */
  update(ctx: BackendContext, rec: ContainerRecord, resources: unknown): Promise<void>;
  /** derived on every read, never trusted from disk */
  status(ctx: BackendContext, rec: ContainerRecord): Status;
  pids(ctx: BackendContext, rec: ContainerRecord): number[];
  /** resource usage as `runc events --stats` reports it */
  stats(ctx: BackendContext, rec: ContainerRecord): CgroupStats;
  /** where snapshots of this container are taken and kept, when not the rootfs in its bundle (proxmox-lxc) */
  snapshotHooks?(ctx: BackendContext, rec: ContainerRecord): Promise<SnapshotHooks>;
  /** start the same container's init again after its rootfs was restored in place */
  relaunch?(ctx: BackendContext, rec: ContainerRecord): Promise<CreateResult>;
  /** CRIU checkpoint with runc's flags (absent: this backend cannot) */
  checkpoint?(ctx: BackendContext, rec: ContainerRecord, flags: string[]): Promise<void>;
  /** CRIU restore into a new container, detached; returns its init pid */
  restoreCheckpoint?(ctx: BackendContext, o: CreateOptions, flags: string[]): Promise<CreateResult>;
}
