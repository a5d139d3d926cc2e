// Container ids: the same rule runc applies, so an id valid for one is valid for the other, and an id can
// never escape the state directory.
import { NexcageError } from "./errors.ts";

const ID_RE = /^[\w+\-.]+$/;

export function validateId(id: string | undefined): string {
  if (id === undefined || id === "") throw new NexcageError("usage", "container id cannot be empty");
  if (id === "." || id === ".." || !ID_RE.test(id) || id.length > 1024) {
    throw new NexcageError("usage", `invalid container id format: ${JSON.stringify(id)}`);
  }
  return id;
}
