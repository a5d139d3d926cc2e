// src/oci/state.ts: runc's state document (key order, omitempty annotations) and RFC3339Nano times.
import { describe, expect, test } from "bun:test";
import type { ContainerRecord } from "../../src/backends/types.ts";
import { hookState, nowRfc3339Nano, OCI_VERSION, rfc3339Nano, toOciState } from "../../src/oci/state.ts";

function rec(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: "c1",
    backend: "crun",
    bundle: "/b",
    rootfs: "/b/rootfs",
    created: "2026-01-02T03:04:05.12Z",
    owner: "root",
    annotations: {},
    pid: 4242,
    pidStartTime: 99,
    ...over,
  };
}

describe("toOciState", () => {
  test("key order without annotations", () => {
    const s = toOciState(rec(), "running");
    expect(Object.keys(s)).toEqual(["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]);
    expect(s).toEqual({
      ociVersion: OCI_VERSION,
      id: "c1",
      pid: 4242,
      status: "running",
      bundle: "/b",
      rootfs: "/b/rootfs",
      created: "2026-01-02T03:04:05.12Z",
      owner: "root",
    });
    expect("annotations" in s).toBe(false);
  });

  test("annotations inserted right before owner when non-empty", () => {
    const s = toOciState(rec({ annotations: { a: "1", "org.nexcage.backend": "crun" } }), "created");
    expect(Object.keys(s)).toEqual(["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"]);
    expect(s.annotations).toEqual({ a: "1", "org.nexcage.backend": "crun" });
  });

  test("serialises in runc's order", () => {
    const json = JSON.stringify(toOciState(rec({ annotations: { k: "v" } }), "paused"));
    expect(json).toBe(
      `{"ociVersion":"${OCI_VERSION}","id":"c1","pid":4242,"status":"paused","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-02T03:04:05.12Z","annotations":{"k":"v"},"owner":"root"}`,
    );
  });

  test("pid is 0 once stopped, kept otherwise", () => {
    expect(toOciState(rec(), "stopped").pid).toBe(0);
    expect(toOciState(rec(), "created").pid).toBe(4242);
    expect(toOciState(rec(), "paused").pid).toBe(4242);
    expect(toOciState(rec({ pid: 0 }), "creating").pid).toBe(0);
  });

  test("ociVersion is a 1.x runtime-spec version", () => {
    expect(toOciState(rec(), "running").ociVersion).toMatch(/^1\.\d+\.\d+$/);
  });
});

describe("hookState", () => {
  test("carries ociVersion, id, status, pid, bundle, annotations", () => {
    const s = JSON.parse(hookState(rec({ annotations: { a: "b" } }), "creating"));
    expect(s).toEqual({ ociVersion: OCI_VERSION, id: "c1", status: "creating", pid: 4242, bundle: "/b", annotations: { a: "b" } });
  });
});

describe("rfc3339Nano", () => {
  test("trailing zeros of the fraction are trimmed", () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 120), 0)).toBe("2026-01-02T03:04:05.12Z");
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 100))).toBe("2026-01-02T03:04:05.1Z");
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 123))).toBe("2026-01-02T03:04:05.123Z");
  });

  test("whole seconds have no fraction", () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 0), 0)).toBe("2026-01-02T03:04:05Z");
    expect(rfc3339Nano(Date.UTC(1999, 11, 31, 23, 59, 59))).toBe("1999-12-31T23:59:59Z");
  });

  test("nanoseconds within the millisecond are kept", () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 120), 456)).toBe("2026-01-02T03:04:05.120000456Z");
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 0), 5)).toBe("2026-01-02T03:04:05.000000005Z");
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 999), 999999)).toBe("2026-01-02T03:04:05.999999999Z");
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 7), 500000)).toBe("2026-01-02T03:04:05.0075Z");
  });

  test("fractional epoch milliseconds are floored", () => {
    expect(rfc3339Nano(Date.UTC(2026, 0, 2, 3, 4, 5, 120) + 0.9)).toBe("2026-01-02T03:04:05.12Z");
  });
});

describe("nowRfc3339Nano", () => {
  test("matches RFC3339Nano in UTC and is close to now", () => {
    const before = Date.now();
    const s = nowRfc3339Nano();
    const after = Date.now();
    expect(s).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    expect(s).not.toMatch(/\.\d*0Z$/); // trimmed
    const t = Date.parse(s.replace(/(\.\d{3})\d+Z$/, "$1Z"));
    expect(t).toBeGreaterThanOrEqual(before - 5);
    expect(t).toBeLessThanOrEqual(after + 5);
  });
});
