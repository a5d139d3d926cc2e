// Preloaded by bun test (bunfig.toml): e2e tests start real containers, podman and containerd.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
