import { describe, expect, test } from "bun:test";
import { cgroupProblem } from "../../src/backends/crun/index.ts";
import { cgroupMode } from "../../src/core/proc.ts";

describe("hybrid cgroup detection (libcrun refuses controllers on the v2 hierarchy of a hybrid host)", () => {
  test("hybrid with hugetlb on cgroup2: names the controller, libcrun's complaint and the fix", () => {
    const p = cgroupProblem("hybrid", ["hugetlb"]);
    expect(p).toContain("hugetlb");
    expect(p).toContain("cgroups in hybrid mode not supported");
    expect(p).toContain("mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb");
    expect(p).toContain("systemd.unified_cgroup_hierarchy=1");
  });

  test("every controller gets its own fix", () => {
    const p = cgroupProblem("hybrid", ["hugetlb", "rdma"]) ?? "";
    expect(p).toContain("/sys/fs/cgroup/rdma");
    expect(p).toContain("/sys/fs/cgroup/hugetlb");
  });

  test("hybrid with an empty cgroup2 hierarchy, unified and legacy hosts are fine", () => {
    expect(cgroupProblem("hybrid", [])).toBeUndefined();
    expect(cgroupProblem("unified", ["memory"])).toBeUndefined();
    expect(cgroupProblem("legacy", [])).toBeUndefined();
  });

  test("this host's mode is detected as one of the known modes", () => {
    expect(["unified", "hybrid", "legacy", "none"]).toContain(cgroupMode());
  });
});
