// The libzfs_core binding (src/native/zfs.ts) loads here and reports why it cannot work: this VM has
// Debian's libzfs_core but no ZFS kernel module (no /dev/zfs), so libzfs_core_init() fails with ENOENT and
// every ZFS operation takes the zfs CLI path. Where /dev/zfs exists the binding initialises instead.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { lzcClone, lzcCreate, lzcDestroySnap, lzcReceive, lzcRollbackTo, lzcSend, lzcSnapshot, zfsCoreProblem } from "../../src/native/zfs.ts";

const haveLib = existsSync("/usr/lib/x86_64-linux-gnu/libzfs_core.so.3");

describe("libzfs_core over bun:ffi", () => {
  test.skipIf(!haveLib)("loads (every bound symbol resolves), and says why it cannot initialise here (skipped only without libzfs4linux)", () => {
    const problem = zfsCoreProblem();
    if (existsSync("/dev/zfs")) {
      expect(problem).toBeUndefined();
    } else {
      expect(problem).toBe("libzfs_core_init() failed with errno 2 (ENOENT: no /dev/zfs, the ZFS kernel module is not loaded)");
      // nothing may be called on an uninitialised library
      expect(() => lzcCreate("pool/x", {})).toThrow("libzfs_core is not initialised");
      expect(() => lzcSnapshot("pool/x@s")).toThrow("libzfs_core is not initialised");
      expect(() => lzcClone("pool/y", "pool/x@s")).toThrow("libzfs_core is not initialised");
      expect(() => lzcRollbackTo("pool/x", "pool/x@s")).toThrow("libzfs_core is not initialised");
      expect(() => lzcDestroySnap("pool/x@s")).toThrow("libzfs_core is not initialised");
      expect(() => lzcSend("pool/x@s", undefined, 1)).toThrow("libzfs_core is not initialised");
      expect(() => lzcReceive("pool/x@s", 0)).toThrow("libzfs_core is not initialised");
    }
  });

  test.skipIf(haveLib)("without the library the problem names the package (skipped: libzfs4linux is installed)", () => {
    expect(zfsCoreProblem()).toContain("apt-get install libzfs4linux");
  });
});
