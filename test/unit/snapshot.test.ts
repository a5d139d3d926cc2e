// src/snapshot: names, ages, retention, manifest comparison (the e2e suite covers the drivers).
import { describe, expect, test } from "bun:test";
import { compare, summarize, type Entry } from "../../src/snapshot/manifest.ts";
import { parseAge, toPrune, validateSnapshotName, type SnapshotMeta } from "../../src/snapshot/service.ts";
import { expectError } from "./expect-error.ts";

const meta = (name: string, created: string) => ({ name, created, taken: created }) as SnapshotMeta;

describe("snapshot names", () => {
  test.each(["a", "daily-1", "Before_upgrade", "x".repeat(40)])("accepted: %s", (n) => expect(validateSnapshotName(n)).toBe(n));
  test.each(["", "1st", "-x", "a b", "a/b", "x".repeat(41), "ünï"])("refused: %s", (n) => {
    expectError(() => validateSnapshotName(n), "usage", "invalid snapshot name");
  });
  test.each(["current", "vzdump"])("reserved as in Proxmox: %s", (n) => {
    expectError(() => validateSnapshotName(n), "usage", "reserved");
  });
});

describe("retention", () => {
  const now = Date.parse("2026-11-26T12:00:00Z");
  const snaps = [meta("a", "2026-11-10T00:00:00Z"), meta("b", "2026-11-20T00:00:00Z"), meta("c", "2026-11-25T00:00:00Z"), meta("d", "2026-11-26T11:00:00Z")];
  const names = (p: Parameters<typeof toPrune>[1]) => toPrune(snaps, p, now).map((s) => s.name);
  test("keep-last N keeps the newest N", () => {
    expect(names({ keepLast: 2 })).toEqual(["a", "b"]);
    expect(names({ keepLast: 0 })).toEqual(["a", "b", "c", "d"]);
    expect(names({ keepLast: 9 })).toEqual([]);
  });
  test("max-age keeps the young ones; with keep-last, a snapshot stays if either keeps it", () => {
    expect(names({ maxAge: parseAge("7d") })).toEqual(["a"]); // b is 6.5 days old
    expect(names({ maxAge: parseAge("1h"), keepLast: 2 })).toEqual(["a", "b"]);
    expect(names({ maxAge: parseAge("30d"), keepLast: 1 })).toEqual([]);
  });
  test("no policy removes nothing", () => expect(names({})).toEqual([]));
  test("ages", () => {
    expect(parseAge("90s")).toBe(90_000);
    expect(parseAge("2w")).toBe(14 * 86_400_000);
    expectError(() => parseAge("7 days"), "usage", "invalid age");
  });
});

describe("manifest comparison", () => {
  const e = (path: string, more: Partial<Entry> = {}): Entry => ({ path, type: "f", mode: 0o644, uid: 0, gid: 0, size: 3, sha256: "aa", mtime: "1", ...more });
  const base = summarize([e("", { type: "d", mode: 0o755, size: 0, sha256: undefined as never }), e("a"), e("b"), e("l", { type: "l", size: 0, target: "a" })].map((x) => (x.type !== "f" ? { ...x, sha256: undefined } : x)) as Entry[]);
  test("identical trees have no differences", () => expect(compare(base, base.entries)).toEqual([]));
  test("each kind of difference is named", () => {
    const actual = [base.entries[0] as Entry, e("a", { sha256: "bb" }), e("l", { type: "l", size: 0, target: "b" }), e("c"), e("n", { mode: 0o600 })];
    const withMode = [...actual.slice(0, 3), e("b", { mode: 0o600, uid: 5 }), ...actual.slice(3)];
    expect(compare(base, withMode)).toEqual([
      { path: "/a", what: "content differs (sha256)" },
      { path: "/b", what: "mode 0644 → 0600" },
      { path: "/b", what: "owner 0:0 → 5:0" },
      { path: "/l", what: "link target a → b" },
      { path: "/c", what: "not in the snapshot" },
      { path: "/n", what: "not in the snapshot" },
    ]);
    expect(compare(base, actual.filter((x) => x.path !== "a"))).toContainEqual({ path: "/a", what: "missing" });
  });
  test("summaries count regular files and their bytes", () => {
    expect(base.files).toBe(2);
    expect(base.bytes).toBe(6);
  });
});
