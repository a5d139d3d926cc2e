// Paths that come from a bundle, an API call or a container are resolved *inside* a root with securejoin
// semantics (as runc does for mount destinations): `..` stops at the root and a symlink is followed as if
// the root were `/`, so neither can ever name a host path outside it. The result is a host path under root.
// It is a check of the tree as it is now: where the tree may change underneath (a running container), the
// caller opens what it resolved without following symlinks, or works inside the container's namespaces.
import { lstatSync, readlinkSync } from "node:fs";
import { NexcageError } from "./errors.ts";

const MAX_LINKS = 255; // as securejoin: a loop is an error, not a hang

/** `path` (absolute or relative, from inside the root) → the host path it names under `root`. */
export function resolveInRoot(root: string, path: string): string {
  if (path.includes("\0")) throw new NexcageError("invalidSpec", `path ${JSON.stringify(path)} contains a NUL byte`);
  const base = root.replace(/\/+$/, "") || "/";
  const done: string[] = []; // components resolved so far, relative to root
  let todo = path.split("/").filter((c) => c !== "" && c !== ".");
  let links = 0;
  while (todo.length) {
    const c = todo.shift() as string;
    if (c === "..") {
      done.pop();
      continue;
    }
    const host = `${base === "/" ? "" : base}/${[...done, c].join("/")}`;
    let target: string | undefined;
    try {
      if (lstatSync(host).isSymbolicLink()) target = readlinkSync(host);
    } catch {
      // not there (yet): the rest is taken literally, still confined by the `..` rule above
    }
    if (target === undefined) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw new NexcageError("invalidSpec", `path ${JSON.stringify(path)}: too many levels of symbolic links`);
    if (target.startsWith("/")) done.length = 0;
    todo = [...target.split("/").filter((x) => x !== "" && x !== "."), ...todo];
  }
  return `${base === "/" ? "" : base}/${done.join("/")}`.replace(/\/$/, "") || "/";
}

/** is `p` the root itself or a path below it (textually, both already resolved)? */
export function isWithin(root: string, p: string): boolean {
  const r = root.replace(/\/+$/, "");
  return p === r || p.startsWith(`${r}/`) || r === "";
}
