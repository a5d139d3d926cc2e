// src/core/log.ts formatLine: logrus-compatible lines (json and text).
import { describe, expect, test } from "bun:test";
import { formatLine } from "../../src/core/log.ts";

const T = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));

describe("formatLine", () => {
  test("json: exactly {level, msg, time} in that order, one line", () => {
    const line = formatLine("json", "error", "container not running: x", T);
    expect(line).toBe('{"level":"error","msg":"container not running: x","time":"2026-01-02T03:04:05Z"}\n');
    const obj = JSON.parse(line);
    expect(Object.keys(obj)).toEqual(["level", "msg", "time"]);
  });

  test("json: time is RFC3339 without a fraction", () => {
    const { time } = JSON.parse(formatLine("json", "info", "x", T));
    expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(time).toBe("2026-01-02T03:04:05Z");
  });

  test("json: whole-second time has no fraction either", () => {
    const { time } = JSON.parse(formatLine("json", "info", "x", new Date(Date.UTC(2026, 5, 7, 8, 9, 10))));
    expect(time).toBe("2026-06-07T08:09:10Z");
  });

  test("json: quotes and newlines in msg stay on one line", () => {
    const line = formatLine("json", "error", 'say "hi"\nthere', T);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line).msg).toBe('say "hi"\nthere');
  });

  test('text: time="..." level=error msg="..."', () => {
    expect(formatLine("text", "error", "container not running: x", T)).toBe(
      'time="2026-01-02T03:04:05Z" level=error msg="container not running: x"\n',
    );
  });

  test("text: msg is quoted and escaped", () => {
    const line = formatLine("text", "warning", 'bad "x"\nnext', T);
    expect(line).toBe('time="2026-01-02T03:04:05Z" level=warning msg="bad \\"x\\"\\nnext"\n');
    expect(line.slice(0, -1)).not.toContain("\n");
  });

  test("text: other levels", () => {
    expect(formatLine("text", "debug", "d", T)).toStartWith('time="2026-01-02T03:04:05Z" level=debug msg=');
    expect(formatLine("text", "info", "i", T)).toContain(" level=info ");
  });
});
