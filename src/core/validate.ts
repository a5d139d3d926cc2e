// valibot at the edges: parse external input, or fail with one line naming the JSON path and the problem.
import * as v from "valibot";
import { NexcageError, type ErrorCode } from "./errors.ts";

export function parseWith<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  what: string,
  code: ErrorCode = "invalidSpec",
): v.InferOutput<S> {
  const r = v.safeParse(schema, input, { abortPipeEarly: true });
  if (r.success) return r.output;
  const issue = r.issues[0];
  const path = issuePath(issue);
  throw new NexcageError(code, `${what}: ${path ? `${path}: ` : ""}${issue.message}`);
}

/** `process.args[0]`-style path (getDotPath joins array indexes with dots). */
function issuePath(issue: v.BaseIssue<unknown>): string {
  let out = "";
  for (const item of issue.path ?? []) {
    const key = (item as { key: unknown }).key;
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** Read and JSON-parse a file, with errors that say which file and why. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new NexcageError("invalidSpec", `${what}: ${path}: no such file or directory`);
    throw new NexcageError("invalidSpec", `${what}: ${path}: ${(e as Error).message}`);
  }
  return parseJsonText(text, `${what}: ${path}`);
}

export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new NexcageError("invalidSpec", `${what}: invalid JSON: ${(e as Error).message}`);
  }
}
