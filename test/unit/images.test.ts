// Images for sandboxes: OCI layouts and archives unpacked by umoci (archives converted by skopeo) into a cache
// keyed by the manifest digest; bundles used as they are; names confined to the images directory.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageStore, pickManifest } from "../../src/images/images.ts";
import { ociArchive } from "../fixtures/busybox.ts";

const dir = mkdtempSync(join(tmpdir(), "nexcage-images-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const images = join(dir, "images");
mkdirSync(join(images, "layout"), { recursive: true });
ociArchive(join(images, "bb.tar"));
Bun.spawnSync(["tar", "-xf", join(images, "bb.tar"), "-C", join(images, "layout")]);
const store = new ImageStore(images, join(dir, "cache"));

test("a layout is unpacked once into a cache keyed by its manifest digest; concurrent asks share it", async () => {
  const [a, b] = await Promise.all([store.resolve("layout"), store.resolve("layout")]);
  expect(a.kind).toBe("layout");
  expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(a.rootfs).toBe(join(dir, "cache/rootfs", a.digest.replace(":", "-"), "rootfs"));
  expect(b.rootfs).toBe(a.rootfs);
  expect(existsSync(join(a.rootfs, "bin/busybox"))).toBe(true);
  expect(a.config.env).toContain("PATH=/bin");
  expect(a.config.args).toEqual(["sh"]);
  expect(readdirSync(join(dir, "cache/rootfs")).filter((n) => n.startsWith(".tmp"))).toEqual([]);
});

test("an archive is converted by skopeo and lands on the same digest", async () => {
  const a = await store.resolve("bb.tar");
  const l = await store.resolve("layout");
  expect(a.kind).toBe("archive");
  expect(a.digest).toBe(l.digest);
  expect(existsSync(join(a.rootfs, "bin/sh"))).toBe(true);
});

test("tags select manifests; names stay inside the images directory", async () => {
  const idx = JSON.parse(readFileSync(join(images, "layout/index.json"), "utf8"));
  mkdirSync(join(images, "tagged"));
  Bun.spawnSync(["cp", "-a", `${join(images, "layout")}/.`, join(images, "tagged")]);
  idx.manifests[0].annotations = { "org.opencontainers.image.ref.name": "v1" };
  writeFileSync(join(images, "tagged/index.json"), JSON.stringify(idx));
  expect((await store.resolve("tagged:v1")).digest).toBe(idx.manifests[0].digest);
  await expect(store.resolve("tagged:v2")).rejects.toThrow("image tagged:v2: no manifest tagged v2 (tags: v1)");
  expect(pickManifest(join(images, "tagged"), undefined, "tagged")).toBe(idx.manifests[0].digest);
  await expect(store.resolve("../etc")).rejects.toThrow(/want NAME\[:TAG\]/);
  await expect(store.resolve("/etc")).rejects.toThrow(/want NAME\[:TAG\]/);
  // a symlink in the images directory pointing out resolves inside it (and is then not there)
  symlinkSync("/etc", join(images, "escape"));
  await expect(store.resolve("escape")).rejects.toThrow(/image escape does not exist|neither an OCI image layout/);
  await expect(store.resolve("missing")).rejects.toThrow(`image missing does not exist in ${images}`);
});

test("a bundle is an image as it is", async () => {
  mkdirSync(join(images, "bundle/rootfs"), { recursive: true });
  writeFileSync(join(images, "bundle/config.json"), JSON.stringify({ process: { args: ["/app"], env: ["A=1"], cwd: "/srv", user: { uid: 5, gid: 6 } } }));
  const b = await store.resolve("bundle");
  expect(b).toMatchObject({ kind: "bundle", rootfs: join(images, "bundle/rootfs"), config: { args: ["/app"], env: ["A=1"], cwd: "/srv", user: { uid: 5, gid: 6 } } });
  await expect(store.resolve("bundle:x")).rejects.toThrow(/is a bundle, which has no tags/);
});
