// API tokens: `nxc_<id>_<secret>`. The id is public (audit log, revoke); the secret is 256 random bits, shown
// once and stored only as its SHA-256 (a slow hash adds nothing for 256-bit random secrets).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const TOKEN_RE = /^nxc_([0-9a-f]{12})_([0-9a-f]{64})$/;

export const newTokenId = () => randomBytes(6).toString("hex");
export const newTokenSecret = () => randomBytes(32).toString("hex");
export const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("hex");

export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? { id: m[1] as string, secret: m[2] as string } : undefined;
}

/** constant-time comparison of two hex digests */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}
