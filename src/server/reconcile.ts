// Start-up reconciliation: make the database and the runtime agree after a crash (SIGKILL, power loss)
// anywhere in a create, delete or snapshot. The rules:
// - a sandbox row still `creating` or `deleting`: the operation died with the server; whatever the engine and
//   the disk have of it is removed and the row (its quota reservation) released;
// - a live row whose container is gone (a host reboot empties /run): `stopped` if its files are still there
//   (start runs it again), released if not;
// - a container of this database (annotation org.nexcage.sandbox.db) with no row: an orphan, removed;
// - a bundle directory with no row: removed;
// - a snapshot row never completed: the snapshot (if any) and the row removed; a snapshot on disk with no row
//   is counted (adopted), so quota can never be under-counted;
// - a background exec that was running: settled from its exit file, or marked unknown.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { log } from "../core/log.ts";
import { removeBundle } from "../images/rootfs.ts";
import type { ExecService } from "./exec.ts";
import { ANN, type SandboxService } from "./sandboxes.ts";

export interface ReconcileReport {
  releasedCreating: string[];
  releasedDeleting: string[];
  markedStopped: string[];
  releasedGone: string[];
  orphanContainers: string[];
  orphanBundles: string[];
  snapshotsDropped: string[];
  snapshotsAdopted: string[];
  execsSettled: string[];
}

export async function reconcile(s: SandboxService, execs: ExecService, dataDir: string): Promise<ReconcileReport> {
  const r: ReconcileReport = { releasedCreating: [], releasedDeleting: [], markedStopped: [], releasedGone: [], orphanContainers: [], orphanBundles: [], snapshotsDropped: [], snapshotsAdopted: [], execsSettled: [] };
  const db = s.db;
  const audit = (target: string, result: string) => db.audit({ tokenId: null, tenant: null, action: "reconcile", target, status: 200, result });

  for (const row of db.sandboxes()) {
    if (row.state === "creating" || row.state === "deleting") {
      await s.engine.remove(row.id).catch((e) => log().warn(`reconcile ${row.id}: ${(e as Error).message}`));
      await removeBundle(row.bundle);
      rmSync(`${dataDir}/execs/${row.id}`, { recursive: true, force: true });
      db.releaseSandbox(row.id);
      (row.state === "creating" ? r.releasedCreating : r.releasedDeleting).push(row.id);
      audit(row.id, `released: crashed while ${row.state}`);
      continue;
    }
    const st = await s.engine.status(row.id);
    if (st === undefined) {
      if (existsSync(`${row.bundle}/config.json`) && existsSync(`${row.bundle}/rootfs`)) {
        if (row.state !== "stopped") {
          db.setSandbox(row.id, { state: "stopped", error: "its container was gone when the server started (host reboot?)" });
          r.markedStopped.push(row.id);
          audit(row.id, "stopped: container gone");
        }
      } else {
        db.releaseSandbox(row.id);
        r.releasedGone.push(row.id);
        audit(row.id, "released: container and files gone");
        continue;
      }
    } else {
      await s.refresh(row);
    }
    // snapshots: half-taken ones go, untracked finished ones are counted
    const rows = db.snapshotRows(row.id);
    let onDisk: string[] = [];
    try {
      onDisk = (await s.engine.snapshotList(row.id)).map((x) => x.name);
    } catch {}
    for (const snap of rows) {
      if (snap.complete) continue;
      if (onDisk.includes(snap.name)) await s.engine.snapshotDelete(row.id, snap.name).catch(() => {});
      db.releaseSnapshot(row.id, snap.name);
      r.snapshotsDropped.push(`${row.id}/${snap.name}`);
    }
    for (const name of onDisk) {
      if (!rows.some((x) => x.name === name)) {
        db.adoptSnapshot(row.id, name, row.tenantId);
        r.snapshotsAdopted.push(`${row.id}/${name}`);
      }
    }
  }

  const known = new Set(db.sandboxes().map((x) => x.id));
  for (const c of await s.engine.list()) {
    if (c.annotations[ANN.db] !== db.path || known.has(c.id)) continue;
    await s.engine.remove(c.id).catch((e) => log().warn(`reconcile: orphan ${c.id}: ${(e as Error).message}`));
    r.orphanContainers.push(c.id);
    audit(c.id, "removed: orphan container");
  }
  let dirs: string[] = [];
  try {
    dirs = readdirSync(`${dataDir}/sandboxes`);
  } catch {}
  for (const d of dirs) {
    if (known.has(d)) continue;
    // a container might still use it if its removal above failed: leave those for the next start
    if ((await s.engine.status(d).catch(() => "unknown")) !== undefined) continue;
    await removeBundle(`${dataDir}/sandboxes/${d}`);
    rmSync(`${dataDir}/execs/${d}`, { recursive: true, force: true });
    r.orphanBundles.push(d);
  }
  for (const e of db.unfinishedExecs()) {
    const after = execs.settle(e);
    if (after?.finished) r.execsSettled.push(e.id);
  }
  return r;
}
