// Host facts the LXC translation needs: where each cgroup controller is mounted, and device nodes.
import { readFileSync, statSync } from "node:fs";
import { cgroup2Mount } from "../../core/proc.ts";
import type { CgroupLayout, HostDevice } from "./translate.ts";

/** v1: controllers with their own hierarchy (from mountinfo); v2: the rest of cgroup2's controllers */
export function hostCgroupLayout(): CgroupLayout {
  const v1 = new Set<string>();
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [, post] = line.split(" - ");
    if (!post?.startsWith("cgroup ")) continue;
    for (const opt of (post.split(" ")[2] ?? "").split(",")) {
      if (["rw", "ro", "relatime", "nosuid", "nodev", "noexec", "xattr"].includes(opt) || opt.includes("=")) continue;
      v1.add(opt);
    }
  }
  const v2 = new Set<string>();
  const mount = cgroup2Mount();
  if (mount) {
    try {
      for (const c of readFileSync(`${mount}/cgroup.controllers`, "utf8").trim().split(/\s+/)) if (c && !v1.has(c)) v2.add(c);
    } catch {}
    // devices and freezer have no cgroup.controllers entry on v2 (eBPF, cgroup.freeze)
    if (!v1.has("devices")) v2.add("devices");
  }
  return { v1, v2 };
}

export function hostDevice(path: string): HostDevice | undefined {
  try {
    const st = statSync(path);
    const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : undefined;
    if (!type) return undefined;
    // Linux dev_t encoding (glibc gnu_dev_major/minor)
    const rdev = BigInt(st.rdev);
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    return { type, major, minor };
  } catch {
    return undefined;
  }
}
