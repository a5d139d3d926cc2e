// Output contracts, field for field against the real runc on the same bundle: clients (go-runc, conmon)
// parse these, so key order, indentation and types must match what runc prints.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { makeBundle } from "../fixtures/busybox.ts";
import { hostSetup } from "./helpers.ts";

const BIN = process.env.NEXCAGE_BIN ?? `${import.meta.dir}/../../dist/nexcage`;
const work = mkdtempSync(`${tmpdir()}/nexcage-contract-`);
const cfg = `${work}/runc.json`;
writeFileSync(cfg, JSON.stringify({ defaultBackend: "runc" }));
const nexcage = [BIN, "--root", `${work}/nx`, "--config", cfg];
const runc = ["runc", "--root", `${work}/runc`];
let bundle: { dir: string; cleanup: () => void };

/** `quiet`: the container inherits the CLI's stdio on create; a pipe would stay open as long as it lives */
function run(argv: string[], quiet = false): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(argv, { stdout: quiet ? "ignore" : "pipe", stderr: quiet ? "ignore" : "pipe" });
  return { code: r.exitCode ?? -1, stdout: r.stdout?.toString() ?? "", stderr: r.stderr?.toString() ?? "" };
}

/** The JSON's shape: key order and value types, recursively (values themselves differ per runtime). */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === "object") return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return typeof v;
}

beforeAll(() => {
  hostSetup();
  bundle = makeBundle({ args: ["sleep", "1000"], annotations: { "org.example.k": "v" } });
  for (const rt of [nexcage, runc]) {
    const c = run([...rt, "create", "--bundle", bundle.dir, "ct"], true);
    expect(c.code).toBe(0);
  }
});

afterAll(() => {
  for (const rt of [nexcage, runc]) run([...rt, "delete", "--force", "ct"]);
  bundle.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe("output contracts match runc", () => {
  test("state: same keys in the same order, two-space indent, no trailing newline", () => {
    const a = run([...nexcage, "state", "ct"]);
    const b = run([...runc, "state", "ct"]);
    expect(a.code).toBe(0);
    expect(a.stderr).toBe("");
    expect(shape(JSON.parse(a.stdout))).toEqual(shape(JSON.parse(b.stdout)));
    expect(a.stdout.endsWith("}")).toBe(b.stdout.endsWith("}"));
    expect(a.stdout.split("\n")[1]?.startsWith('  "ociVersion"')).toBe(true);
    const s = JSON.parse(a.stdout);
    expect(s.status).toBe("created");
    expect(s.annotations).toEqual({ "org.example.k": "v" });
    expect(s.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  });

  test("list --format json: compact array of the same state objects (owner filled in)", () => {
    const a = run([...nexcage, "list", "--format", "json"]);
    const b = run([...runc, "list", "--format", "json"]);
    expect(a.code).toBe(0);
    expect(a.stdout.endsWith("\n")).toBe(true);
    expect(a.stdout.trim().includes("\n")).toBe(false);
    expect(shape(JSON.parse(a.stdout))).toEqual(shape(JSON.parse(b.stdout)));
    expect(JSON.parse(a.stdout)[0].owner).toBe(JSON.parse(b.stdout)[0].owner);
  });

  test("list on an empty root prints null, like runc", () => {
    const a = run([BIN, "--root", `${work}/empty-nx`, "list", "--format", "json"]);
    const b = run(["runc", "--root", `${work}/empty-runc`, "list", "--format", "json"]);
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).toBe("null\n");
  });

  test("list table header matches runc byte for byte", () => {
    const a = run([BIN, "--root", `${work}/empty-nx`, "list"]);
    const b = run(["runc", "--root", `${work}/empty-runc`, "list"]);
    expect(a.stdout).toBe(b.stdout);
  });

  test("ps --format json: a bare array of pids", () => {
    const a = run([...nexcage, "ps", "--format", "json", "ct"]);
    const b = run([...runc, "ps", "--format", "json", "ct"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/^\[\d+(,\d+)*\]\n$/);
    expect(b.stdout).toMatch(/^\[\d+(,\d+)*\]\n$/);
    const pid = JSON.parse(run([...nexcage, "state", "ct"]).stdout).pid;
    expect(JSON.parse(a.stdout)).toContain(pid);
  });

  test("features: the runtime-spec features document with runc's keys, four-space indent", () => {
    const a = run([BIN, "features"]);
    const b = run(["runc", "features"]);
    expect(a.code).toBe(0);
    const fa = JSON.parse(a.stdout);
    const fb = JSON.parse(b.stdout);
    expect(Object.keys(fa)).toEqual(Object.keys(fb));
    expect(Object.keys(fa.linux)).toEqual(Object.keys(fb.linux));
    expect(shape(fa.linux.seccomp)).toEqual(shape(fb.linux.seccomp));
    expect(fa.hooks).toEqual(fb.hooks);
    expect(a.stdout.split("\n")[1]?.startsWith('    "ociVersionMin"')).toBe(true);
    expect(fa.annotations["org.nexcage.backends"]).toContain("crun");
  });

  test("--version: first line `nexcage version X.Y.Z`, then `spec: 1.x`, as runc lays it out", () => {
    const a = run([BIN, "--version"]).stdout.split("\n");
    expect(a[0]).toMatch(/^nexcage version \d+\.\d+\.\d+$/);
    expect(a[1]).toMatch(/^spec: 1\.\d+\.\d+/);
    expect(run(["runc", "--version"]).stdout.split("\n")[2]).toMatch(/^spec: /);
  });

  test("state, ps and list print nothing on stderr (go-runc merges it into the JSON)", () => {
    for (const args of [["state", "ct"], ["ps", "--format", "json", "ct"], ["list", "--format", "json"]]) {
      expect(run([...nexcage, "--log-format", "json", ...args]).stderr).toBe("");
    }
  });
});
