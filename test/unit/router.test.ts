// src/core/config.ts parseConfig + src/router/router.ts route/compilePattern.
import { describe, expect, test } from "bun:test";
import { BACKEND_ANNOTATION, parseConfig, type NexcageConfig } from "../../src/core/config.ts";
import { NexcageError } from "../../src/core/errors.ts";
import { compilePattern, route } from "../../src/router/router.ts";
import { expectError, expectRejection } from "./expect-error.ts";

const invalidSpec = (fn: () => unknown, ...contains: string[]): NexcageError => expectError(fn, "invalidSpec", ...contains);

const cfg = (data: unknown, source = "/etc/nexcage/config.json"): NexcageConfig => parseConfig(data, source);

describe("parseConfig: nexcage shape", () => {
  test("defaults: crun, no rules, annotation override on", () => {
    const c = cfg({}, "(built-in defaults)");
    expect(c.defaultBackend).toBe("crun");
    expect(c.routing).toEqual([]);
    expect(c.fallback).toEqual([]);
    expect(c.annotationOverride).toBe(true);
    expect(c.source).toBe("(built-in defaults)");
    const d = route(c, "anything");
    expect(d).toMatchObject({ backend: "crun", by: "default" });
    expect(d.reason).toContain("(built-in defaults)");
  });

  test("full config parses", () => {
    const c = cfg({
      $schema: "https://example/schema.json",
      defaultBackend: "runc",
      fallback: ["crun"],
      annotationOverride: false,
      routing: [{ name: "web", id: "web-*", backend: "crun" }],
      runc: { path: "/usr/bin/runc" },
    });
    expect(c.defaultBackend).toBe("runc");
    expect(c.fallback).toEqual(["crun"]);
    expect(c.annotationOverride).toBe(false);
    expect(c.routing).toHaveLength(1);
    expect(c.runc).toEqual({ path: "/usr/bin/runc" });
  });

  test("unknown top-level key → invalidSpec naming the key and the file", () => {
    invalidSpec(() => cfg({ defaultbackend: "crun" }, "/x/config.json"), "defaultbackend", "/x/config.json");
  });

  test("unknown key inside a rule → invalidSpec naming routing[i].key", () => {
    invalidSpec(() => cfg({ routing: [{ id: "a", backend: "crun" }, { id: "b", backend: "runc", priority: 1 }] }), "routing[1].priority");
  });

  test("unknown key under runc → invalidSpec", () => {
    invalidSpec(() => cfg({ runc: { binary: "/x" } }), "runc.binary");
  });

  test("unknown backend name → invalidSpec listing the known ones", () => {
    invalidSpec(() => cfg({ defaultBackend: "docker" }), "defaultBackend", "crun");
    invalidSpec(() => cfg({ routing: [{ id: "x", backend: "kata" }] }), "routing[0].backend");
    invalidSpec(() => cfg({ fallback: ["runc", "nope"] }), "fallback[1]");
  });

  test("rule without id or annotation → invalidSpec", () => {
    invalidSpec(() => cfg({ routing: [{ backend: "runc" }] }), "routing[0]", "`id` or `annotation`");
    invalidSpec(() => cfg({ routing: [{ name: "only a name", backend: "runc" }] }), "routing[0]");
  });

  test("rule with value but no annotation → invalidSpec", () => {
    invalidSpec(() => cfg({ routing: [{ id: "x", value: "v", backend: "runc" }] }), "routing[0]", "`value` needs `annotation`");
  });

  test("empty id / annotation → invalidSpec", () => {
    invalidSpec(() => cfg({ routing: [{ id: "", backend: "runc" }] }), "routing[0].id");
    invalidSpec(() => cfg({ routing: [{ annotation: "", backend: "runc" }] }), "routing[0].annotation");
  });

  test("wrong types → invalidSpec", () => {
    invalidSpec(() => cfg({ annotationOverride: "no" }), "annotationOverride");
    invalidSpec(() => cfg({ routing: {} }), "routing");
  });
});

describe("compilePattern", () => {
  test("glob: * and ? anchored at both ends", () => {
    const re = compilePattern("web-*");
    expect(re.test("web-1")).toBe(true);
    expect(re.test("web-")).toBe(true);
    expect(re.test("xweb-1")).toBe(false);
    expect(compilePattern("a?c").test("abc")).toBe(true);
    expect(compilePattern("a?c").test("ac")).toBe(false);
    expect(compilePattern("exact").test("exact")).toBe(true);
    expect(compilePattern("exact").test("exact2")).toBe(false);
  });

  test("glob: regex metacharacters are literal", () => {
    expect(compilePattern("a.b").test("a.b")).toBe(true);
    expect(compilePattern("a.b").test("axb")).toBe(false);
    expect(compilePattern("a+b").test("a+b")).toBe(true);
    expect(compilePattern("a+b").test("aab")).toBe(false);
    expect(compilePattern("(x)|[y]").test("(x)|[y]")).toBe(true);
  });

  test("regex when it starts with ^ or ends with $", () => {
    expect(compilePattern("^db-[0-9]+$").test("db-12")).toBe(true);
    expect(compilePattern("^db-[0-9]+$").test("db-x")).toBe(false);
    expect(compilePattern("^db-").test("db-anything")).toBe(true);
    expect(compilePattern("-prod$").test("api-prod")).toBe(true);
    expect(compilePattern("-prod$").test("api-prod-2")).toBe(false);
  });

  test("invalid regex → invalidSpec naming the pattern", () => {
    invalidSpec(() => compilePattern("^db-(["), "invalid routing pattern", '"^db-(["');
  });
});

describe("route", () => {
  test("rule by id glob", () => {
    const c = cfg({ routing: [{ id: "web-*", backend: "runc" }] });
    const d = route(c, "web-1");
    expect(d.backend).toBe("runc");
    expect(d.by).toBe("rule");
    expect(d.rule?.index).toBe(0);
    expect(d.reason).toContain("rule #1");
    expect(d.reason).toContain('"web-*"');
    expect(route(c, "db-1")).toMatchObject({ backend: "crun", by: "default" });
  });

  test("rule by id regex ^db-[0-9]+$", () => {
    const c = cfg({ routing: [{ name: "databases", id: "^db-[0-9]+$", backend: "proxmox-lxc" }] });
    const d = route(c, "db-42");
    expect(d).toMatchObject({ backend: "proxmox-lxc", by: "rule" });
    expect(d.rule?.name).toBe("databases");
    expect(d.reason).toContain("databases");
    expect(d.reason).toContain("^db-[0-9]+$");
    expect(route(c, "db-x").by).toBe("default");
    expect(route(c, "xdb-1").by).toBe("default");
  });

  test("rule by annotation key (any value)", () => {
    const c = cfg({ routing: [{ annotation: "io.kubernetes.cri.sandbox-id", backend: "runc" }] });
    const d = route(c, "x", { "io.kubernetes.cri.sandbox-id": "abc" });
    expect(d).toMatchObject({ backend: "runc", by: "rule" });
    expect(d.reason).toContain("io.kubernetes.cri.sandbox-id");
    expect(route(c, "x", {}).by).toBe("default");
    expect(route(c, "x").by).toBe("default");
  });

  test("rule by annotation key + value glob and value regex", () => {
    const c = cfg({
      routing: [
        { annotation: "tier", value: "db-*", backend: "proxmox-vm" },
        { annotation: "tier", value: "^(gold|silver)$", backend: "runc" },
      ],
    });
    expect(route(c, "x", { tier: "db-main" })).toMatchObject({ backend: "proxmox-vm", by: "rule" });
    expect(route(c, "x", { tier: "gold" })).toMatchObject({ backend: "runc", by: "rule" });
    expect(route(c, "x", { tier: "bronze" })).toMatchObject({ backend: "crun", by: "default" });
    const d = route(c, "x", { tier: "silver" });
    expect(d.rule?.index).toBe(1);
    expect(d.reason).toContain("rule #2");
    expect(d.reason).toContain('tier="silver"');
  });

  test("a rule with id and annotation needs both", () => {
    const c = cfg({ routing: [{ id: "web-*", annotation: "gpu", backend: "proxmox-vm" }] });
    expect(route(c, "web-1", { gpu: "1" }).backend).toBe("proxmox-vm");
    expect(route(c, "web-1", {}).backend).toBe("crun");
    expect(route(c, "db-1", { gpu: "1" }).backend).toBe("crun");
    const reason = route(c, "web-1", { gpu: "1" }).reason;
    expect(reason).toContain("web-*");
    expect(reason).toContain("gpu");
  });

  test("first matching rule wins", () => {
    const c = cfg({
      routing: [
        { id: "web-*", backend: "runc" },
        { id: "*", backend: "lxc" },
        { id: "web-1", backend: "microvm" },
      ],
    });
    expect(route(c, "web-1")).toMatchObject({ backend: "runc", rule: { index: 0 } });
    expect(route(c, "other")).toMatchObject({ backend: "lxc", rule: { index: 1 } });
  });

  test("defaultBackend applies when nothing matches", () => {
    const c = cfg({ defaultBackend: "runc", routing: [{ id: "web-*", backend: "crun" }] }, "/my.json");
    const d = route(c, "db");
    expect(d).toMatchObject({ backend: "runc", by: "default" });
    expect(d.rule).toBeUndefined();
    expect(d.reason).toContain("/my.json");
  });

  test(`annotation ${BACKEND_ANNOTATION} overrides rules and default`, () => {
    const c = cfg({ defaultBackend: "crun", routing: [{ id: "*", backend: "lxc" }] });
    const d = route(c, "x", { [BACKEND_ANNOTATION]: "runc" });
    expect(d).toMatchObject({ backend: "runc", by: "annotation" });
    expect(d.reason).toContain(`${BACKEND_ANNOTATION}=runc`);
  });

  test("annotationOverride:false ignores the annotation (even an unknown backend)", () => {
    const c = cfg({ annotationOverride: false, routing: [{ id: "*", backend: "lxc" }] });
    expect(route(c, "x", { [BACKEND_ANNOTATION]: "runc" })).toMatchObject({ backend: "lxc", by: "rule" });
    expect(route(c, "x", { [BACKEND_ANNOTATION]: "bogus" })).toMatchObject({ backend: "lxc", by: "rule" });
  });

  test("unknown backend in the annotation → invalidSpec", () => {
    invalidSpec(() => route(cfg({}), "x", { [BACKEND_ANNOTATION]: "docker" }), BACKEND_ANNOTATION, '"docker"');
  });

  test("invalid regex in a rule → invalidSpec when the config is loaded, naming the rule", () => {
    invalidSpec(() => cfg({ routing: [{ name: "dbs", id: "^db-(", backend: "runc" }] }), "routing[0] (dbs): invalid routing pattern");
  });

  test("invalid regex in a value pattern → invalidSpec when the config is loaded", () => {
    invalidSpec(() => cfg({ routing: [{ annotation: "k", value: "^[$", backend: "runc" }] }), "invalid routing pattern");
  });

  test("compilePattern still refuses a bad regex on its own", () => {
    invalidSpec(() => compilePattern("^db-("), "invalid routing pattern");
  });
});

describe("parseConfig: legacy NexCage (Zig) shapes", () => {
  test("container_config.routing + default_runtime", () => {
    const c = cfg({ container_config: { routing: [{ pattern: "kube-*", runtime: "crun" }], default_runtime: "lxc" } });
    expect(c.defaultBackend).toBe("lxc");
    expect(c.routing).toHaveLength(1);
    expect(c.routing[0]).toMatchObject({ id: "kube-*", backend: "crun" });
    const d = route(c, "kube-apiserver");
    expect(d).toMatchObject({ backend: "crun", by: "rule" });
    expect(d.reason).toContain("rule #1");
    expect(d.reason).toContain("routing[0]");
    expect(d.reason).toContain("kube-*");
    expect(route(c, "other")).toMatchObject({ backend: "lxc", by: "default" });
  });

  test("container_config.crun_name_patterns + default_container_type", () => {
    const c = cfg({ container_config: { crun_name_patterns: ["oci-*"], default_container_type: "lxc" } });
    expect(c.defaultBackend).toBe("lxc");
    const d = route(c, "oci-web");
    expect(d).toMatchObject({ backend: "crun", by: "rule" });
    expect(d.reason).toContain("crun_name_patterns[0]");
    expect(route(c, "ct-100")).toMatchObject({ backend: "lxc", by: "default" });
  });

  test("runtime.routing", () => {
    const c = cfg({ runtime: { routing: [{ pattern: "*", runtime: "crun" }] } });
    expect(c.defaultBackend).toBe("crun");
    expect(route(c, "anything")).toMatchObject({ backend: "crun", by: "rule" });
  });

  test("container_config.routing replaces runtime.routing; crun_name_patterns come after", () => {
    const c = cfg({
      runtime: { routing: [{ pattern: "*", runtime: "runc" }] },
      container_config: { routing: [{ pattern: "vm-*", runtime: "vm" }], crun_name_patterns: ["*"] },
    });
    expect(c.routing.map((r) => [r.id, r.backend])).toEqual([
      ["vm-*", "proxmox-vm"],
      ["*", "crun"],
    ]);
    expect(route(c, "vm-1").backend).toBe("proxmox-vm");
    expect(route(c, "x").backend).toBe("crun");
  });

  test.each([
    ["crun", "crun"],
    ["runc", "runc"],
    ["lxc", "lxc"],
    ["proxmox_lxc", "proxmox-lxc"],
    ["proxmox-lxc", "proxmox-lxc"],
    ["pct", "proxmox-lxc"],
    ["vm", "proxmox-vm"],
    ["qemu", "proxmox-vm"],
    ["qm", "proxmox-vm"],
    ["proxmox-vm", "proxmox-vm"],
    ["microvm", "microvm"],
  ])("runtime name %s → %s (in rules and as default)", (legacy, backend) => {
    const c = cfg({ container_config: { routing: [{ pattern: "x-*", runtime: legacy }], default_runtime: legacy } });
    expect(c.routing[0]?.backend as string).toBe(backend);
    expect(c.defaultBackend as string).toBe(backend);
  });

  test("top-level default_runtime is read for legacy configs", () => {
    expect(cfg({ container_config: {}, default_runtime: "proxmox_lxc" }).defaultBackend).toBe("proxmox-lxc");
  });

  test("container_config.default_runtime wins over default_container_type", () => {
    expect(cfg({ container_config: { default_runtime: "runc", default_container_type: "lxc" } }).defaultBackend).toBe("runc");
  });

  test("a proxmox section alone marks a legacy config (extra keys tolerated)", () => {
    const c = cfg({ proxmox: { host: "pve" }, log_level: "debug" });
    expect(c.defaultBackend).toBe("crun");
    expect(c.routing).toEqual([]);
    expect(c.annotationOverride).toBe(true);
  });

  test("unknown runtime name → invalidSpec", () => {
    invalidSpec(() => cfg({ container_config: { routing: [{ pattern: "x", runtime: "docker" }] } }), "unknown runtime", '"docker"');
    invalidSpec(() => cfg({ container_config: { default_runtime: "kata" } }), "unknown runtime", '"kata"', "default_runtime");
  });

  test("malformed legacy rule → invalidSpec naming the path", () => {
    invalidSpec(() => cfg({ container_config: { routing: [{ pattern: 1, runtime: "crun" }] } }), "container_config.routing[0].pattern");
  });

  test("legacy configs keep the annotation override", () => {
    const c = cfg({ container_config: { default_runtime: "lxc" } });
    expect(route(c, "x", { [BACKEND_ANNOTATION]: "runc" })).toMatchObject({ backend: "runc", by: "annotation" });
  });

  test("legacy config keeps its source", () => {
    expect(cfg({ container_config: {} }, "/etc/nexcage/old.json").source).toBe("/etc/nexcage/old.json");
  });
});
