// Sizes as admins write them (512M, 4G, 1.5G, 1073741824) → bytes.
import { NexcageError } from "../core/errors.ts";

const UNITS: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseSize(s: string | number, what = "size"): number {
  if (typeof s === "number") {
    if (!Number.isSafeInteger(s) || s < 0) throw new NexcageError("usage", `invalid ${what} ${s}: want a non-negative whole number of bytes`);
    return s;
  }
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(s.trim());
  if (!m) throw new NexcageError("usage", `invalid ${what} ${JSON.stringify(s)}: want a number with an optional K, M, G or T suffix (e.g. 512M)`);
  const n = Math.floor(Number(m[1]) * (UNITS[(m[2] as string).toLowerCase()] as number));
  if (!Number.isSafeInteger(n)) throw new NexcageError("usage", `invalid ${what} ${JSON.stringify(s)}: too large`);
  return n;
}
