// src/oci/spec.ts parseSpec: valibot validation of config.json; errors name the JSON path.
import { describe, expect, test } from "bun:test";
import { NexcageError } from "../../src/core/errors.ts";
import { defaultSpec } from "../../src/oci/default-spec.ts";
import { parseProcess, parseResources, parseSpec } from "../../src/oci/spec.ts";
import { expectError, expectRejection } from "./expect-error.ts";

// biome-ignore lint: test helper works on loose JSON
type Json = any;

function spec(mutate?: (s: Json) => void): Json {
  const s = structuredClone(defaultSpec()) as Json;
  mutate?.(s);
  return s;
}

function invalid(input: unknown, path: string, fn: (i: unknown) => unknown = parseSpec): NexcageError {
  return expectError(() => fn(input), "invalidSpec", `${path}:`);
}

describe("parseSpec: valid specs", () => {
  test("runc-like default spec parses and round-trips", () => {
    const input = spec();
    const out = parseSpec(input);
    expect(out.ociVersion).toBe(input.ociVersion);
    expect(out.process?.args).toEqual(["sh"]);
    expect(out.process?.cwd).toBe("/");
    expect(out.root).toEqual({ path: "rootfs", readonly: true });
    expect(out).toEqual(input);
  });

  test("rootless default spec parses", () => {
    const out = parseSpec(structuredClone(defaultSpec({ rootless: true, args: ["sleep", "1"] })));
    expect(out.process?.args).toEqual(["sleep", "1"]);
    expect(out.linux?.namespaces?.map((n) => n.type)).toContain("user");
  });

  test("unknown extra keys pass through at every level (looseObject)", () => {
    const input = spec((s) => {
      s.vendorThing = { a: 1 };
      s.process.extraField = "x";
      s.process.user.extra = true;
      s.root.extra = 5;
      s.linux.someFutureKey = ["a"];
      s.mounts[0].extra = "m";
      s.hooks = { prestart: [{ path: "/bin/true", extra: 1 }], futurePhase: [{ path: "whatever" }] };
    });
    const out = parseSpec(input) as Json;
    expect(out.vendorThing).toEqual({ a: 1 });
    expect(out.process.extraField).toBe("x");
    expect(out.process.user.extra).toBe(true);
    expect(out.root.extra).toBe(5);
    expect(out.linux.someFutureKey).toEqual(["a"]);
    expect(out.mounts[0].extra).toBe("m");
    expect(out.hooks.prestart[0].extra).toBe(1);
    expect(out.hooks.futurePhase).toEqual([{ path: "whatever" }]);
  });

  test("optional features: hooks with timeout, annotations, resources, namespaces with path", () => {
    const out = parseSpec(
      spec((s) => {
        s.hooks = { createRuntime: [{ path: "/usr/bin/hook", args: ["hook", "x"], env: ["A=1"], timeout: 5 }] };
        s.annotations = { "org.nexcage.backend": "runc" };
        s.linux.namespaces.push({ type: "cgroup" }, { type: "time" }, { type: "network", path: "/var/run/netns/x" });
        s.linux.resources = { memory: { limit: 1 << 20, swappiness: 60 }, cpu: { shares: 1024, quota: -1 }, pids: { limit: 100 } };
      }),
    );
    expect(out.hooks?.createRuntime?.[0]?.timeout).toBe(5);
    expect(out.annotations).toEqual({ "org.nexcage.backend": "runc" });
    expect(out.linux?.resources?.pids?.limit).toBe(100);
  });

  test("ociVersion 1.x with a suffix is accepted", () => {
    expect(parseSpec(spec((s) => (s.ociVersion = "1.2.0-rc.1"))).ociVersion).toBe("1.2.0-rc.1");
    expect(parseSpec(spec((s) => (s.ociVersion = "1.0.0"))).ociVersion).toBe("1.0.0");
  });

  test("env values may contain '=' and be empty", () => {
    expect(parseSpec(spec((s) => (s.process.env = ["A=b=c", "EMPTY="]))).process?.env).toEqual(["A=b=c", "EMPTY="]);
  });
});

describe("parseSpec: errors name the JSON path", () => {
  test("not an object", () => {
    const err = invalid("nope", "", parseSpec);
    expect(err.message).toStartWith("invalid config.json");
  });

  test("missing ociVersion", () => {
    invalid(spec((s) => delete s.ociVersion), "ociVersion");
  });

  test('ociVersion "2.0.0"', () => {
    const err = invalid(spec((s) => (s.ociVersion = "2.0.0")), "ociVersion");
    expect(err.message).toContain("1.x");
  });

  test("ociVersion not a string", () => {
    invalid(spec((s) => (s.ociVersion = 1)), "ociVersion");
  });

  test("process.args as a string", () => {
    invalid(spec((s) => (s.process.args = "sh -c true")), "process.args");
  });

  test("process.args empty", () => {
    invalid(spec((s) => (s.process.args = [])), "process.args");
  });

  test("process.args missing", () => {
    invalid(spec((s) => delete s.process.args), "process.args");
  });

  test("process.args with a non-string element", () => {
    invalid(spec((s) => (s.process.args = ["sh", 1])), "process.args[1]");
  });

  test("process.cwd relative", () => {
    const err = invalid(spec((s) => (s.process.cwd = "tmp")), "process.cwd");
    expect(err.message).toContain("absolute");
  });

  test("process.cwd missing", () => {
    invalid(spec((s) => delete s.process.cwd), "process.cwd");
  });

  test('process.env entry without "="', () => {
    const err = invalid(spec((s) => (s.process.env = ["PATH=/bin", "NOEQUALS"])), "process.env[1]");
    expect(err.message).toContain("KEY=value");
  });

  test('process.env entry starting with "="', () => {
    invalid(spec((s) => (s.process.env = ["=x"])), "process.env[0]");
  });

  test("process.user.uid negative", () => {
    invalid(spec((s) => (s.process.user.uid = -1)), "process.user.uid");
  });

  test("process.user missing", () => {
    invalid(spec((s) => delete s.process.user), "process.user");
  });

  test("process.terminal not a boolean", () => {
    invalid(spec((s) => (s.process.terminal = "yes")), "process.terminal");
  });

  test("process.rlimits type without RLIMIT_", () => {
    invalid(spec((s) => (s.process.rlimits = [{ type: "NOFILE", hard: 1, soft: 1 }])), "process.rlimits[0].type");
  });

  test("bad namespace type", () => {
    const err = invalid(spec((s) => (s.linux.namespaces[0].type = "bogus")), "linux.namespaces[0].type");
    expect(err.message).toContain("pid");
  });

  test("bad namespace type at a later index", () => {
    invalid(spec((s) => s.linux.namespaces.push({ type: "net" })), "linux.namespaces[5].type");
  });

  test("hook path relative", () => {
    const err = invalid(spec((s) => (s.hooks = { prestart: [{ path: "hooks/x" }] })), "hooks.prestart[0].path");
    expect(err.message).toContain("absolute");
  });

  test("hook timeout 0", () => {
    invalid(spec((s) => (s.hooks = { poststop: [{ path: "/bin/true" }, { path: "/bin/true", timeout: 0 }] })), "hooks.poststop[1].timeout");
  });

  test("hook timeout negative / fractional", () => {
    invalid(spec((s) => (s.hooks = { createContainer: [{ path: "/bin/true", timeout: -3 }] })), "hooks.createContainer[0].timeout");
    invalid(spec((s) => (s.hooks = { startContainer: [{ path: "/bin/true", timeout: 1.5 }] })), "hooks.startContainer[0].timeout");
  });

  test("missing process", () => {
    const err = invalid(spec((s) => delete s.process), "process");
    expect(err.message).toContain("required");
  });

  test("missing root", () => {
    const err = invalid(spec((s) => delete s.root), "root");
    expect(err.message).toContain("required");
  });

  test("root.path empty", () => {
    invalid(spec((s) => (s.root.path = "")), "root.path");
  });

  test("annotations with a non-string value", () => {
    invalid(spec((s) => (s.annotations = { a: 1 })), "annotations.a");
  });

  test("mount without destination", () => {
    invalid(spec((s) => delete s.mounts[2].destination), "mounts[2].destination");
  });

  test("memory swappiness above 100", () => {
    invalid(spec((s) => (s.linux.resources = { memory: { swappiness: 101 } })), "linux.resources.memory.swappiness");
  });

  test("rootfsPropagation not a known mode", () => {
    invalid(spec((s) => (s.linux.rootfsPropagation = "weird")), "linux.rootfsPropagation");
  });

  test("message format: 'invalid config.json: <path>: <problem>'", () => {
    const err = invalid(spec((s) => (s.process.cwd = "rel")), "process.cwd");
    expect(err.message).toBe("invalid config.json: process.cwd: must be an absolute path");
  });
});

describe("parseProcess / parseResources", () => {
  test("a process.json with args parses", () => {
    const p = parseProcess({ user: { uid: 0, gid: 0 }, args: ["ls", "-la"], cwd: "/", env: ["A=1"] });
    expect(p.args).toEqual(["ls", "-la"]);
  });

  test("a process.json without args or commandLine is invalid", () => {
    const err = invalid({ user: { uid: 0, gid: 0 }, cwd: "/" }, "args", parseProcess);
    expect(err.message).toStartWith("invalid process.json");
  });

  test("process.json errors name the path", () => {
    invalid({ user: { uid: 0, gid: 0 }, args: ["x"], cwd: "rel" }, "cwd", parseProcess);
  });

  test("resources: valid and invalid", () => {
    expect(parseResources({ pids: { limit: 5 } }).pids?.limit).toBe(5);
    const err = invalid({ cpu: { shares: -1 } }, "cpu.shares", parseResources);
    expect(err.message).toStartWith("invalid resources");
  });
});
