// Reading a container's OCI state: shared by Runtime.state and the CLI's fast path for `state` (which must
// not load the rest of the engine: clients call it constantly, and every module costs start-up time).
import { getBackend } from "../backends/index.ts";
import type { BackendContext, BackendName } from "../backends/types.ts";
import { toOciState, type OciState } from "../oci/state.ts";
import { errors } from "./errors.ts";
import { validateId } from "./ids.ts";
import type { StateStore } from "./store.ts";

export function backendContext(store: StateStore, backend: BackendName, opts: { systemdCgroup: boolean; debug: boolean }): BackendContext {
  return { root: store.root, backendRoot: store.backendRoot(backend), ...opts };
}

export async function queryState(store: StateStore, id: string, context: (b: BackendName) => BackendContext): Promise<OciState> {
  validateId(id);
  const rec = store.read(id);
  if (!rec) throw errors.notFound(id);
  if (rec.creating) {
    // creating while someone holds the lock; a leftover from a crashed create otherwise
    if (await store.isLocked(id)) return toOciState(rec, "creating");
    throw errors.notFound(id);
  }
  const backend = await getBackend(rec.backend);
  return toOciState(rec, backend.status(context(rec.backend), rec));
}
