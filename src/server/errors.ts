// How failures leave the API: an HTTP status and `{"error":{"code","message","exitCode"?}}`. Engine errors keep
// their code (and the CLI's exit code), so a client can tell "does not exist" from "wrong state" without
// parsing sentences; the server adds its own codes for what only a server refuses (auth, quota, limits).
import { ExitCode, NexcageError, toNexcageError, type ErrorCode } from "../core/errors.ts";
import { QuotaError } from "../db/db.ts";

export type ApiCode = ErrorCode | "unauthorized" | "forbidden" | "quotaExceeded" | "rateLimited" | "tooManyOperations" | "payloadTooLarge" | "badRequest";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** engine error class → HTTP status */
const STATUS: Record<ErrorCode, number> = {
  failure: 500,
  usage: 400,
  invalidSpec: 400,
  notFound: 404,
  badState: 409,
  exists: 409,
  busy: 409,
  unsupported: 422,
  hookFailed: 500,
  storage: 507,
  timeout: 504,
  integrity: 409,
  permission: 500,
  notExecutable: 400,
};

export interface ErrorBody {
  error: { code: ApiCode; message: string; exitCode?: number };
}

export function toApiError(e: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (e instanceof ApiError) return { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: e.headers };
  if (e instanceof QuotaError) return { status: 403, body: { error: { code: "quotaExceeded", message: e.message } }, headers: {} };
  const err = e instanceof NexcageError ? e : toNexcageError(e);
  return { status: STATUS[err.code] ?? 500, body: { error: { code: err.code, message: err.message, exitCode: ExitCode[err.code] } }, headers: {} };
}

/** the exit code of a `nexcage` child → its error class (for exec's engine errors) */
export function codeOfExit(exit: number): ErrorCode {
  const hit = (Object.entries(ExitCode) as [ErrorCode, number][]).find(([, n]) => n === exit);
  return hit ? hit[0] : "failure";
}
