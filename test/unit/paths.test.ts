// src/core/paths.ts resolveInRoot: securejoin semantics on a real tree of symlinks.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isWithin, resolveInRoot } from "../../src/core/paths.ts";
import { expectError } from "./expect-error.ts";

const root = mkdtempSync(join(tmpdir(), "nexcage-paths-"));
mkdirSync(join(root, "etc/sub"), { recursive: true });
writeFileSync(join(root, "etc/passwd"), "");
symlinkSync("/etc", join(root, "abs")); // absolute: means the root's /etc
symlinkSync("../../../../..", join(root, "etc/sub/up")); // climbs as far as it can
symlinkSync("sub", join(root, "etc/rel"));
symlinkSync("loop2", join(root, "loop1"));
symlinkSync("loop1", join(root, "loop2"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("resolveInRoot", () => {
  test.each([
    ["/etc/passwd", "/etc/passwd"],
    ["etc/./passwd", "/etc/passwd"],
    ["/../../../../tmp/X", "/tmp/X"],
    ["/etc/../../..", ""],
    ["/abs/passwd", "/etc/passwd"],
    ["/etc/sub/up/tmp", "/tmp"],
    ["/etc/rel/up/x", "/x"],
    ["/missing/../../y", "/y"],
    ["/", ""],
  ])("%p → inside the root at %p", (p, want) => {
    const got = resolveInRoot(root, p);
    expect(got).toBe(`${root}${want}`);
    expect(isWithin(root, got)).toBe(true);
  });

  test("a symlink loop is an error, not a hang", () => {
    expectError(() => resolveInRoot(root, "/loop1/x"), "invalidSpec");
  });

  test("a NUL byte is refused", () => {
    expectError(() => resolveInRoot(root, "/etc\0/x"), "invalidSpec");
  });

  test("isWithin is textual and exact about prefixes", () => {
    expect(isWithin("/a/b", "/a/b")).toBe(true);
    expect(isWithin("/a/b", "/a/b/c")).toBe(true);
    expect(isWithin("/a/b", "/a/bc")).toBe(false);
    expect(isWithin("/a/b", "/a")).toBe(false);
  });
});
