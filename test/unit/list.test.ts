// src/cli/commands/list.ts tabwrite: Go's text/tabwriter as runc sets it up (minwidth 12, padding 3).
import { describe, expect, test } from "bun:test";
import { tabwrite } from "../../src/cli/commands/list.ts";

const HEADER = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];

describe("tabwrite", () => {
  test("header only is exactly runc's output", () => {
    expect(tabwrite([HEADER])).toBe("ID          PID         STATUS      BUNDLE      CREATED     OWNER\n");
  });

  test("short cells keep the 12-column minimum; last column is not padded", () => {
    const out = tabwrite([HEADER, ["a", "1", "running", "/b", "2026", "root"]]);
    expect(out).toBe(
      "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n" + "a           1           running     /b          2026        root\n",
    );
  });

  test("a long cell widens its column to len+3 for every row", () => {
    const bundle = "/var/lib/containers/bundle-long"; // 31 chars → width 34
    const created = "2026-01-02T03:04:05.123456789Z"; // 30 chars → width 33
    const out = tabwrite([HEADER, ["web", "4242", "running", bundle, created, "root"]]);
    const lines = out.split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe("");
    expect(lines[0]).toBe(`${"ID".padEnd(12)}${"PID".padEnd(12)}${"STATUS".padEnd(12)}${"BUNDLE".padEnd(34)}${"CREATED".padEnd(33)}OWNER`);
    expect(lines[1]).toBe(`${"web".padEnd(12)}${"4242".padEnd(12)}${"running".padEnd(12)}${bundle}   ${created}   root`);
    // OWNER starts at the same column on both lines
    expect(lines[0]?.indexOf("OWNER")).toBe(lines[1]?.indexOf("root"));
  });

  test("a 9-character cell still fits the minimum (9+3 = 12), a 10-character one widens to 13", () => {
    expect(tabwrite([["123456789", "x"]])).toBe("123456789   x\n");
    expect(tabwrite([["1234567890", "x"]])).toBe("1234567890   x\n");
    expect(tabwrite([["1234567890", "x"], ["a", "y"]])).toBe("1234567890   x\n" + "a            y\n");
  });

  test("the last cell is never padded even if long", () => {
    const out = tabwrite([["a", "owner-with-a-long-name"], ["b", "r"]]);
    expect(out).toBe("a           owner-with-a-long-name\nb           r\n");
  });

  test("an empty last cell still leaves the previous cell padded (as Go's tabwriter: the cell is tab-terminated)", () => {
    const out = tabwrite([HEADER, ["x", "0", "stopped", "/b", "t", ""]]);
    const lines = out.split("\n");
    expect(lines[1]).toBe(`${"x".padEnd(12)}${"0".padEnd(12)}${"stopped".padEnd(12)}${"/b".padEnd(12)}${"t".padEnd(12)}`);
    expect(out.endsWith("\n")).toBe(true);
  });

  test("no rows → empty output", () => {
    expect(tabwrite([])).toBe("");
  });
});
