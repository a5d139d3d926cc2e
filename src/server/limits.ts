// Per-tenant limits on how hard a tenant may push the server: a request rate (token bucket, refilled
// continuously) and a number of operations in flight at once. Both answer 429 with Retry-After, so a
// well-behaved client backs off instead of failing.
import { ApiError } from "./errors.ts";

export interface LimitOptions {
  /** requests per second, sustained */
  rate: number;
  /** requests allowed in a burst above the rate */
  burst: number;
  /** operations (other than reads) running at once per tenant */
  concurrent: number;
}

export class TenantLimits {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly inflight = new Map<string, number>();

  constructor(readonly o: LimitOptions) {}

  /** take one request from the tenant's bucket, or refuse */
  take(key: string, now = performance.now()): void {
    const b = this.buckets.get(key) ?? { tokens: this.o.burst, at: now };
    b.tokens = Math.min(this.o.burst, b.tokens + ((now - b.at) / 1000) * this.o.rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const wait = Math.ceil((1 - b.tokens) / this.o.rate);
      throw new ApiError(429, "rateLimited", `rate limit of ${this.o.rate} requests/s (burst ${this.o.burst}) exceeded; retry in ${wait} s`, { "retry-after": String(wait) });
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
  }

  /** hold one of the tenant's operation slots until release() */
  enter(key: string): () => void {
    const n = this.inflight.get(key) ?? 0;
    if (n >= this.o.concurrent) {
      throw new ApiError(429, "tooManyOperations", `${n} operations of this tenant are in progress (limit ${this.o.concurrent}); retry when one finishes`, { "retry-after": "1" });
    }
    this.inflight.set(key, n + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const m = (this.inflight.get(key) ?? 1) - 1;
      if (m > 0) this.inflight.set(key, m);
      else this.inflight.delete(key);
    };
  }
}
