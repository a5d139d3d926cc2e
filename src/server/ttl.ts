// Idle TTL: a sandbox with a TTL that no API call has touched for that long is stopped, or snapshotted and
// then stopped (action snapshot-stop; the snapshot counts against the snapshot quota like any other, and when
// the quota is full the sandbox is stopped anyway and the reason kept in its error). Any call on the sandbox
// starts the clock again; POST /v1/sandboxes/:id/ttl extends or changes it. Stopped sandboxes keep their
// files and their reservation until deleted, and `start` runs them again.
import { log } from "../core/log.ts";
import type { Principal, SandboxService } from "./sandboxes.ts";

const SYSTEM: Principal = { tokenId: "ttl", tenantId: null, tenant: null, admin: true };

export async function reapIdle(s: SandboxService, now = Date.now()): Promise<string[]> {
  const stopped: string[] = [];
  for (const row of s.db.sandboxes()) {
    if (!row.ttlSeconds || (row.state !== "running" && row.state !== "paused")) continue;
    if (now - row.lastActive < row.ttlSeconds * 1000) continue;
    let note: string | null = null;
    try {
      if (row.ttlAction === "snapshot-stop") {
        const name = `ttl-${new Date(now).toISOString().replace(/[-:]/g, "").replace("T", "-").replace(/\..*$/, "")}`;
        try {
          await s.snapshotCreate(SYSTEM, row.id, name);
        } catch (e) {
          note = `idle TTL: snapshot failed, stopped without it: ${(e as Error).message}`;
        }
      }
      await s.stop(SYSTEM, row.id);
      s.db.setSandbox(row.id, { error: note });
      s.db.audit({ tokenId: null, tenant: row.tenant, action: `ttl ${row.ttlAction ?? "stop"}`, target: row.id, status: 200, result: note ? "stopped without snapshot" : "ok" });
      stopped.push(row.id);
    } catch (e) {
      log().warn(`idle TTL of ${row.id}: ${(e as Error).message}`);
    }
  }
  return stopped;
}

/** check every `everyMs`; returns the stop function */
export function startReaper(s: SandboxService, everyMs: number): () => void {
  let busy = false;
  const t = setInterval(() => {
    if (busy) return;
    busy = true;
    reapIdle(s)
      .catch((e) => log().warn(`idle TTL: ${(e as Error).message}`))
      .finally(() => (busy = false));
  }, everyMs);
  t.unref?.();
  return () => clearInterval(t);
}
