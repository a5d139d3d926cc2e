// The runtime-spec "features" document (what `runc features` prints), for what nexcage accepts through any
// of its OCI-engine backends. Kept to runc 1.1's lists so that a client never sees a feature one of the
// backends behind it would refuse.
import { OCI_VERSION } from "./state.ts";

const MOUNT_OPTIONS = (
  "acl async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noacl noatime nodev " +
  "nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid nosymfollow private ratime " +
  "rbind rdev rdiratime relatime remount rexec rnoatime rnodev rnodiratime rnoexec rnorelatime rnostrictatime " +
  "rnosuid rnosymfollow ro rprivate rrelatime rro rrw rshared rslave rstrictatime rsuid rsymfollow runbindable " +
  "rw shared silent slave strictatime suid symfollow sync tmpcopyup unbindable"
).split(" ");

const CAPS = (
  "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE " +
  "NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT " +
  "SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL " +
  "SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF CHECKPOINT_RESTORE"
)
  .split(" ")
  .map((c) => `CAP_${c}`);

const SECCOMP_ARCHS = (
  "AARCH64 ARM MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 PPC PPC64 PPC64LE S390 S390X X32 X86 X86_64"
)
  .split(" ")
  .map((a) => `SCMP_ARCH_${a}`);

export function features(version: string, backends: string[]) {
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: OCI_VERSION,
    hooks: ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
      capabilities: CAPS,
      cgroup: { v1: true, v2: true, systemd: true, systemdUser: true },
      seccomp: {
        enabled: true,
        actions: ["ALLOW", "ERRNO", "KILL", "KILL_PROCESS", "KILL_THREAD", "LOG", "NOTIFY", "TRACE", "TRAP"].map((a) => `SCMP_ACT_${a}`),
        operators: ["EQ", "GE", "GT", "LE", "LT", "MASKED_EQ", "NE"].map((o) => `SCMP_CMP_${o}`),
        archs: SECCOMP_ARCHS,
      },
      apparmor: { enabled: true },
      selinux: { enabled: true },
    },
    annotations: {
      "org.nexcage.backends": backends.join(","),
      "org.nexcage.version": version,
    },
  };
}
