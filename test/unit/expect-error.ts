// One assertion for "this throws a NexcageError of that class" (code + exit code, optional message parts).
import { expect } from "bun:test";
import { ExitCode, NexcageError, type ErrorCode } from "../../src/core/errors.ts";

function check(caught: unknown, code: ErrorCode, contains: string[]): NexcageError {
  expect(caught).toBeInstanceOf(NexcageError);
  const err = caught as NexcageError;
  expect(err.code).toBe(code);
  expect(err.exitCode).toBe(ExitCode[code]);
  for (const c of contains) expect(err.message).toContain(c);
  return err;
}

export function expectError(fn: () => unknown, code: ErrorCode, ...contains: string[]): NexcageError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return check(caught, code, contains);
}

export async function expectRejection(p: Promise<unknown>, code: ErrorCode, ...contains: string[]): Promise<NexcageError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  return check(caught, code, contains);
}
