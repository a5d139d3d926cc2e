// src/oci/signals.ts parseSignal: names and numbers the way runc's `kill` takes them.
import { describe, expect, test } from "bun:test";
import { NexcageError } from "../../src/core/errors.ts";
import { parseSignal } from "../../src/oci/signals.ts";
import { expectError, expectRejection } from "./expect-error.ts";

function expectUsage(input: string): void {
  expectError(() => parseSignal(input), "usage");
}

describe("parseSignal", () => {
  test("default (undefined or empty) is SIGTERM = 15", () => {
    expect(parseSignal(undefined)).toBe(15);
    expect(parseSignal("")).toBe(15);
  });

  test.each([
    ["TERM", 15],
    ["SIGTERM", 15],
    ["term", 15],
    ["sigterm", 15],
    ["SigTerm", 15],
    ["15", 15],
    ["KILL", 9],
    ["SIGKILL", 9],
    ["kill", 9],
    ["9", 9],
    ["HUP", 1],
    ["INT", 2],
    ["QUIT", 3],
    ["USR1", 10],
    ["USR2", 12],
    ["CHLD", 17],
    ["CONT", 18],
    ["STOP", 19],
    ["WINCH", 28],
    ["IOT", 6],
    ["ABRT", 6],
    ["SYS", 31],
  ] as const)("%s → %d", (input, n) => {
    expect(parseSignal(input)).toBe(n);
  });

  test("real-time signals: RTMIN = 34, SIGRTMIN+3 = 37, rtmin+30 = 64", () => {
    expect(parseSignal("RTMIN")).toBe(34);
    expect(parseSignal("SIGRTMIN")).toBe(34);
    expect(parseSignal("SIGRTMIN+3")).toBe(37);
    expect(parseSignal("rtmin+3")).toBe(37);
    expect(parseSignal("SIGRTMIN+30")).toBe(64);
  });

  test("numbers 1..64 are accepted as is", () => {
    expect(parseSignal("1")).toBe(1);
    expect(parseSignal("34")).toBe(34);
    expect(parseSignal("64")).toBe(64);
  });

  test.each(["0", "65", "100", "FOO", "SIGFOO", "SIG", "RTMIN+31", "RTMIN+", "-9", "9x", "1.5", "TERM ", "constructor", "__proto__"])(
    "%p is a usage error",
    (input) => expectUsage(input),
  );
});
