// Sandbox images from the host (no registry): an OCI image layout (a directory with oci-layout), an image
// archive (oci-archive or docker-archive tar, converted to a layout by skopeo), or an OCI bundle (config.json +
// rootfs/). Layout images are unpacked once by umoci into a cache keyed by the manifest's digest, so every
// sandbox of one image starts from the same verified tree; each sandbox gets its own copy (a reflink where
// the filesystem can).
//
// Images are named, never given as host paths: a name is resolved inside the images directory the admin
// set up (`nexcage serve --images DIR`), so no API caller can make the server read an arbitrary host path.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { NexcageError } from "../core/errors.ts";
import { isWithin, resolveInRoot } from "../core/paths.ts";

export interface ImageConfig {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number };
}

export interface ResolvedImage {
  /** what the request said */
  ref: string;
  kind: "layout" | "archive" | "bundle";
  /** sha256:... of the manifest (layouts and archives); the bundle's path for bundles */
  digest: string;
  /** the tree each sandbox copies */
  rootfs: string;
  config: ImageConfig;
}

const IMAGE_REF = /^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,200}(:[a-zA-Z0-9._-]{1,128})?$/;

async function run(argv: string[], what: string): Promise<string> {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new NexcageError("failure", `${what}: ${argv[0]} failed: ${err.trim().split("\n").at(-1) ?? `exit ${code}`}`);
  return out;
}

export class ImageStore {
  /** digest → the unpack in progress (one per image, however many sandboxes ask at once) */
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    /** where the admin puts images */
    readonly imagesDir: string,
    /** the server's cache: converted archives and unpacked rootfs */
    readonly cacheDir: string,
  ) {}

  /** `NAME[:TAG]` → an unpacked, cached image */
  async resolve(ref: string): Promise<ResolvedImage> {
    if (!IMAGE_REF.test(ref) || ref.split(/[/:]/).some((c) => c === ".." || c === ".")) {
      throw new NexcageError("invalidSpec", `image ${JSON.stringify(ref)}: want NAME[:TAG], a name under the server's images directory`);
    }
    const colon = ref.lastIndexOf(":");
    const name = colon > 0 ? ref.slice(0, colon) : ref;
    const tag = colon > 0 ? ref.slice(colon + 1) : undefined;
    const path = resolveInRoot(this.imagesDir, name);
    if (!isWithin(this.imagesDir, path) || !existsSync(path)) throw new NexcageError("notFound", `image ${name} does not exist in ${this.imagesDir}`);
    const st = statSync(path);
    if (st.isDirectory() && existsSync(`${path}/oci-layout`)) return this.fromLayout(ref, path, tag, "layout");
    if (st.isDirectory() && existsSync(`${path}/config.json`)) {
      if (tag) throw new NexcageError("invalidSpec", `image ${ref}: ${name} is a bundle, which has no tags`);
      return this.fromBundle(ref, path);
    }
    if (st.isFile()) return this.fromLayout(ref, await this.archiveLayout(path), tag, "archive");
    throw new NexcageError("invalidSpec", `image ${name}: neither an OCI image layout, an image archive nor a bundle`);
  }

  /** an archive converted once (keyed by path, size and mtime) into a layout under the cache */
  private async archiveLayout(path: string): Promise<string> {
    const st = statSync(path);
    const key = createHash("sha256").update(`${path}\0${st.size}\0${st.mtimeMs}`).digest("hex").slice(0, 32);
    const layout = `${this.cacheDir}/archives/${key}`;
    if (existsSync(`${layout}/index.json`)) return layout;
    mkdirSync(`${this.cacheDir}/archives`, { recursive: true, mode: 0o700 });
    const tmp = mkdtempSync(`${this.cacheDir}/archives/.tmp-`);
    try {
      const isOci = Bun.spawnSync(["tar", "-tf", path, "oci-layout"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0 || Bun.spawnSync(["tar", "-tf", path, "./oci-layout"], { stdout: "ignore", stderr: "ignore" }).exitCode === 0;
      await run(["skopeo", "copy", "--quiet", `${isOci ? "oci-archive" : "docker-archive"}:${path}`, `oci:${tmp}/layout:latest`], `image archive ${path}`);
      try {
        renameSync(`${tmp}/layout`, layout);
      } catch {
        // another process converted it first
      }
      return layout;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private async fromLayout(ref: string, layout: string, tag: string | undefined, kind: "layout" | "archive"): Promise<ResolvedImage> {
    const digest = pickManifest(layout, tag, ref);
    const dir = `${this.cacheDir}/rootfs/${digest.replace(":", "-")}`;
    if (!existsSync(`${dir}/.complete`)) {
      let p = this.pending.get(digest);
      if (!p) {
        p = this.unpack(layout, digest, dir).finally(() => this.pending.delete(digest));
        this.pending.set(digest, p);
      }
      await p;
    }
    return { ref, kind, digest, rootfs: `${dir}/rootfs`, config: imageConfig(`${dir}/config.json`) };
  }

  /**
   * umoci unpack of one manifest. umoci names images by tag, and a layout's manifests need not have one: it
   * reads a view of the layout (the same blobs, an index with just this manifest, tagged) instead.
   */
  private async unpack(layout: string, digest: string, dir: string): Promise<string> {
    mkdirSync(`${this.cacheDir}/rootfs`, { recursive: true, mode: 0o700 });
    const tmp = mkdtempSync(`${this.cacheDir}/rootfs/.tmp-`);
    try {
      const view = `${tmp}/layout`;
      mkdirSync(view);
      symlinkSync(`${layout}/blobs`, `${view}/blobs`);
      writeFileSync(`${view}/oci-layout`, readFileSync(`${layout}/oci-layout`));
      const index = JSON.parse(readFileSync(`${layout}/index.json`, "utf8")) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
      const desc = index.manifests.find((m) => m.digest === digest);
      writeFileSync(`${view}/index.json`, JSON.stringify({ schemaVersion: 2, manifests: [{ ...desc, annotations: { ...desc?.annotations, "org.opencontainers.image.ref.name": "nexcage" } }] }));
      await run(["umoci", "unpack", "--image", `${view}:nexcage`, `${tmp}/bundle`], `unpacking image ${digest}`);
      mkdirSync(dir.replace(/\/[^/]+$/, ""), { recursive: true });
      writeFileSync(`${tmp}/bundle/.complete`, digest);
      try {
        renameSync(`${tmp}/bundle`, dir);
      } catch (e) {
        // someone else finished the same image first: theirs is as good as ours
        if (!existsSync(`${dir}/.complete`)) throw new NexcageError("storage", `cannot store unpacked image ${digest}: ${(e as Error).message}`);
      }
      return dir;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  private fromBundle(ref: string, path: string): ResolvedImage {
    const cfg = imageConfig(`${path}/config.json`);
    const spec = JSON.parse(readFileSync(`${path}/config.json`, "utf8")) as { root?: { path?: string } };
    const rootfs = resolveInRoot(path, spec.root?.path ?? "rootfs");
    if (!existsSync(rootfs)) throw new NexcageError("invalidSpec", `image ${ref}: the bundle has no rootfs at ${rootfs}`);
    return { ref, kind: "bundle", digest: `bundle:${path}`, rootfs, config: cfg };
  }

  /** images the admin has put in place (names only; unpacking happens on first use) */
  list(): string[] {
    try {
      return readdirSync(this.imagesDir).filter((n) => !n.startsWith(".")).sort();
    } catch {
      return [];
    }
  }
}

/** the manifest a tag names in index.json (ref.name annotation); without a tag, the only one or `latest` */
export function pickManifest(layout: string, tag: string | undefined, ref: string): string {
  let index: { manifests?: { digest?: string; mediaType?: string; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(readFileSync(`${layout}/index.json`, "utf8"));
  } catch (e) {
    throw new NexcageError("invalidSpec", `image ${ref}: unreadable index.json: ${(e as Error).message}`);
  }
  const ms = (index.manifests ?? []).filter((m) => typeof m.digest === "string" && /^sha256:[0-9a-f]{64}$/.test(m.digest));
  const named = (t: string) => ms.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === t);
  const m = tag ? named(tag) : ms.length === 1 ? ms[0] : named("latest");
  if (!m) {
    const tags = ms.map((x) => x.annotations?.["org.opencontainers.image.ref.name"]).filter(Boolean);
    throw new NexcageError("notFound", `image ${ref}: ${tag ? `no manifest tagged ${tag}` : "several manifests and none tagged latest"}${tags.length ? ` (tags: ${tags.join(", ")})` : ""}`);
  }
  return m.digest as string;
}

/** process defaults from a runtime config (umoci writes one from the image's config; bundles have theirs) */
function imageConfig(path: string): ImageConfig {
  let spec: { process?: { args?: string[]; env?: string[]; cwd?: string; user?: { uid?: number; gid?: number } } } = {};
  try {
    spec = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new NexcageError("invalidSpec", `image config ${path}: ${(e as Error).message}`);
  }
  const p = spec.process ?? {};
  return {
    args: Array.isArray(p.args) ? p.args.map(String) : [],
    env: Array.isArray(p.env) ? p.env.map(String) : ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    cwd: typeof p.cwd === "string" && p.cwd.startsWith("/") ? p.cwd : "/",
    user: { uid: Number(p.user?.uid ?? 0), gid: Number(p.user?.gid ?? 0) },
  };
}
