// src/core/ids.ts validateId: runc's id rule; ids can never escape the state directory.
import { describe, expect, test } from "bun:test";
import { NexcageError } from "../../src/core/errors.ts";
import { validateId } from "../../src/core/ids.ts";
import { expectError, expectRejection } from "./expect-error.ts";

describe("validateId", () => {
  test.each(["a", "a.b_c-d+e", "x".repeat(64), "ABC123", "0", "web-1", "..a", "a..", "-x", "_"])("valid: %p", (id) => {
    expect(validateId(id)).toBe(id);
  });

  test.each(["", ".", "..", "../x", "a/b", "/abs", "a b", "ä", "a\nb", "a:b", "a*", "a\0b", "x".repeat(1025)])("invalid: %p", (id) => {
    expectError(() => validateId(id), "usage");
  });

  test("undefined and empty say the id cannot be empty", () => {
    expect(() => validateId(undefined)).toThrow("container id cannot be empty");
    expect(() => validateId("")).toThrow("container id cannot be empty");
  });

  test("a bad id is quoted in the message", () => {
    expect(() => validateId("a/b")).toThrow('invalid container id format: "a/b"');
  });

  test("1024 characters is still valid", () => {
    const id = "y".repeat(1024);
    expect(validateId(id)).toBe(id);
  });
});
