// Loads a shared library embedded in the compiled binary. bun:ffi's dlopen of an embedded file would
// extract it to $TMPDIR (and fail without a writable /tmp); instead the bytes go into a memfd and we
// dlopen /proc/self/fd/N. From source, the file on disk is opened directly.
import { dlopen, FFIType, type FFIFunction } from "bun:ffi";
import { existsSync, readFileSync, writeSync } from "node:fs";

let memfdCreate: ((name: Buffer, flags: number) => number) | undefined;

function toMemfd(bytes: Uint8Array, name: string): string {
  if (!memfdCreate) {
    const libc = dlopen("libc.so.6", { memfd_create: { args: [FFIType.cstring, FFIType.u32], returns: FFIType.i32 } });
    memfdCreate = (n, f) => libc.symbols.memfd_create(n as never, f);
  }
  const cname = Buffer.from(`${name}\0`);
  const fd = memfdCreate(cname, 1 /* MFD_CLOEXEC */);
  if (fd < 0) throw new Error(`memfd_create failed for ${name}`);
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  // the fd stays open for the life of the process: the mapping is what dlopen keeps
  return `/proc/self/fd/${fd}`;
}

export function loadEmbedded<const Fns extends Record<string, FFIFunction>>(path: string, symbols: Fns) {
  // in the compiled binary embedded files live under /$bunfs/ (readable by fs, not by the dynamic loader)
  const embedded = path.startsWith("/$bunfs/") || !existsSync(path);
  const target = embedded ? toMemfd(new Uint8Array(readFileSync(path)), path.split("/").pop() ?? "nexcage-lib") : path;
  return dlopen(target, symbols);
}
