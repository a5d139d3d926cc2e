// Parallel streamed SHA-256 of files (native/hash_shim.c). Loaded on first use.
import { FFIType, ptr } from "bun:ffi";
import shimPath from "../../native/build/libnexcage_hash.so" with { type: "file" };
import { availableParallelism } from "node:os";
import { loadEmbedded } from "./loader.ts";

let lib: ReturnType<typeof open> | undefined;
function open() {
  return loadEmbedded(shimPath, { nx_sha256_files: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 } });
}

export interface FileHash {
  /** hex digest; empty when the file could not be read */
  sha256: string;
  /** bytes hashed, or -errno */
  size: number;
}

/** hash a batch of files, one thread per core by default */
export function sha256Files(paths: string[], threads = availableParallelism()): FileHash[] {
  if (!paths.length) return [];
  const blob = Buffer.from(paths.map((p) => `${p}\0`).join(""));
  const out = Buffer.alloc(paths.length * 32);
  const sizes = new BigInt64Array(paths.length);
  const rc = (lib ??= open()).symbols.nx_sha256_files(ptr(blob), paths.length, ptr(out), ptr(sizes), threads);
  if (rc < 0) throw new Error(`sha256: errno ${-rc}`);
  return paths.map((_, i) => {
    const size = Number(sizes[i]);
    return { sha256: size >= 0 ? out.toString("hex", i * 32, i * 32 + 32) : "", size };
  });
}
