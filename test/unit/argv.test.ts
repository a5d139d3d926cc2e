// src/cli/argv.ts: parseFlags / splitGlobal, driven by the real command arg definitions.
import { describe, expect, test } from "bun:test";
import type { ArgsDef } from "citty";
import { globalArgs, parseFlags, splitGlobal } from "../../src/cli/argv.ts";
import createCmd from "../../src/cli/commands/create.ts";
import deleteCmd from "../../src/cli/commands/delete.ts";
import execCmd, { parse as execParse } from "../../src/cli/commands/exec.ts";
import killCmd from "../../src/cli/commands/kill.ts";
import listCmd from "../../src/cli/commands/list.ts";
import runCmd from "../../src/cli/commands/run.ts";
import { NexcageError } from "../../src/core/errors.ts";
import { expectError, expectRejection } from "./expect-error.ts";

const defs = (cmd: { args?: unknown }): ArgsDef => cmd.args as ArgsDef;
const create = defs(createCmd);
const exec = defs(execCmd);
const kill = defs(killCmd);
const del = defs(deleteCmd);
const list = defs(listCmd);
const run = defs(runCmd);

const usageError = (fn: () => unknown): NexcageError => expectError(fn, "usage");

describe("parseFlags: value forms", () => {
  test("--flag value", () => {
    const p = parseFlags(["--bundle", "/b", "ID"], create);
    expect(p.bundle).toBe("/b");
    expect(p._).toEqual(["ID"]);
  });

  test("--flag=value", () => {
    const p = parseFlags(["--bundle=/b", "ID"], create);
    expect(p.bundle).toBe("/b");
    expect(p._).toEqual(["ID"]);
  });

  test("-flag value (single-dash long flag)", () => {
    const p = parseFlags(["-pid-file", "/run/p.pid", "-bundle", "/b", "ID"], create);
    expect(p["pid-file"]).toBe("/run/p.pid");
    expect(p.bundle).toBe("/b");
    expect(p._).toEqual(["ID"]);
  });

  test("-flag=value (single-dash long flag)", () => {
    const p = parseFlags(["-pid-file=/run/p.pid", "-console-socket=/s.sock", "ID"], create);
    expect(p["pid-file"]).toBe("/run/p.pid");
    expect(p["console-socket"]).toBe("/s.sock");
    expect(p._).toEqual(["ID"]);
  });

  test("value containing '=' keeps everything after the first '='", () => {
    const p = parseFlags(["--env=A=b=c", "ID", "true"], exec, execParse);
    expect(p.env).toEqual(["A=b=c"]);
  });

  test("empty value with --flag= is accepted", () => {
    const p = parseFlags(["--bundle=", "ID"], create);
    expect(p.bundle).toBe("");
  });

  test("value of a string flag may start with a dash (Go's flag package takes the next token)", () => {
    const p = parseFlags(["--pid-file", "-weird", "ID"], create);
    expect(p["pid-file"]).toBe("-weird");
    expect(p._).toEqual(["ID"]);
  });

  test("a non-repeatable flag given twice: last one wins", () => {
    const p = parseFlags(["-b", "/one", "--bundle", "/two", "ID"], create);
    expect(p.bundle).toBe("/two");
  });

  test("a lone '-' is a positional", () => {
    const p = parseFlags(["ID", "-"], kill);
    expect(p._).toEqual(["ID", "-"]);
  });
});

describe("parseFlags: short aliases", () => {
  test("-b (create --bundle)", () => {
    expect(parseFlags(["-b", "/bundle", "ID"], create).bundle).toBe("/bundle");
    expect(parseFlags(["-b=/bundle", "ID"], create).bundle).toBe("/bundle");
  });

  test("-d (run --detach, exec --detach)", () => {
    expect(parseFlags(["-d", "ID"], run).detach).toBe(true);
    expect(parseFlags(["-d", "ID", "sh"], exec, execParse).detach).toBe(true);
  });

  test("-t (exec --tty)", () => {
    const p = parseFlags(["-t", "ID", "sh"], exec, execParse);
    expect(p.tty).toBe(true);
    expect(p._).toEqual(["ID", "sh"]);
  });

  test("-a (kill --all)", () => {
    const p = parseFlags(["-a", "ID", "KILL"], kill);
    expect(p.all).toBe(true);
    expect(p._).toEqual(["ID", "KILL"]);
  });

  test("-f (delete --force, boolean)", () => {
    const p = parseFlags(["-f", "ID"], del);
    expect(p.force).toBe(true);
    expect(p._).toEqual(["ID"]);
  });

  test("-f (list --format, string) and -q (list --quiet)", () => {
    expect(parseFlags(["-f", "json"], list).format).toBe("json");
    expect(parseFlags(["-q"], list).quiet).toBe(true);
  });

  test("-e and -u on exec", () => {
    const p = parseFlags(["-e", "A=1", "-u", "1000:1000", "ID", "id"], exec, execParse);
    expect(p.env).toEqual(["A=1"]);
    expect(p.user).toBe("1000:1000");
  });

  test("combined short flags are not split (-dt is unknown, as in Go's flag package)", () => {
    const err = usageError(() => parseFlags(["-dt", "ID", "sh"], exec, execParse));
    expect(err.message).toBe("flag provided but not defined: -dt");
  });
});

describe("parseFlags: booleans", () => {
  test("--detach takes no value", () => {
    const p = parseFlags(["--detach", "ID"], run);
    expect(p.detach).toBe(true);
    expect(p._).toEqual(["ID"]);
  });

  test("--detach=false / =true / =0 / =1 / =t / =f", () => {
    expect(parseFlags(["--detach=false", "ID"], run).detach).toBe(false);
    expect(parseFlags(["--detach=true", "ID"], run).detach).toBe(true);
    expect(parseFlags(["--detach=0", "ID"], run).detach).toBe(false);
    expect(parseFlags(["--detach=1", "ID"], run).detach).toBe(true);
    expect(parseFlags(["-detach=t", "ID"], run).detach).toBe(true);
    expect(parseFlags(["-detach=f", "ID"], run).detach).toBe(false);
    expect(parseFlags(["--detach=TRUE", "ID"], run).detach).toBe(true);
    expect(parseFlags(["--detach=False", "ID"], run).detach).toBe(false);
  });

  test("a boolean never consumes the next token (`--detach false` leaves false positional)", () => {
    const p = parseFlags(["--detach", "false", "ID"], run);
    expect(p.detach).toBe(true);
    expect(p._).toEqual(["false", "ID"]);
  });

  test("--detach=maybe is a usage error", () => {
    const err = usageError(() => parseFlags(["--detach=maybe", "ID"], run));
    expect(err.message).toContain("maybe");
    expect(err.message).toContain("-detach");
  });

  test("--detach= (empty) is a usage error", () => {
    usageError(() => parseFlags(["--detach=", "ID"], run));
  });

  test("single-dash boolean long flags (-no-pivot, -no-new-keyring)", () => {
    const p = parseFlags(["-no-pivot", "-no-new-keyring", "ID"], create);
    expect(p["no-pivot"]).toBe(true);
    expect(p["no-new-keyring"]).toBe(true);
    expect(p._).toEqual(["ID"]);
  });

  test("booleans not given are absent (no default)", () => {
    const p = parseFlags(["ID"], run);
    expect(p.detach).toBeUndefined();
    expect(p._).toEqual(["ID"]);
  });

  // runc's `run` defines --no-subreaper (and --keep); runc accepts `runc run -no-subreaper ID`.
  test("run accepts runc's -no-subreaper and --keep", () => {
    const p = parseFlags(["-no-subreaper", "--keep", "-d", "ID"], run);
    expect(p._).toEqual(["ID"]);
    expect(p.detach).toBe(true);
  });
});

describe("parseFlags: defaults", () => {
  test("string defaults are filled in (list --format table)", () => {
    const p = parseFlags([], list);
    expect(p.format).toBe("table");
    expect(p.quiet).toBeUndefined();
    expect(p._).toEqual([]);
  });

  test("an explicit value overrides the default", () => {
    expect(parseFlags(["--format", "json"], list).format).toBe("json");
    expect(parseFlags(["--format=json"], list).format).toBe("json");
  });
});

describe("parseFlags: positionals and ordering", () => {
  test("flags after positionals are parsed (interspersed): kill ID --all", () => {
    const p = parseFlags(["ID", "--all"], kill);
    expect(p.all).toBe(true);
    expect(p._).toEqual(["ID"]);
  });

  test("kill ID 9 -a", () => {
    const p = parseFlags(["ID", "9", "-a"], kill);
    expect(p.all).toBe(true);
    expect(p._).toEqual(["ID", "9"]);
  });

  test("create ID --bundle B (flag after the id)", () => {
    const p = parseFlags(["ID", "--bundle", "/b", "--pid-file=/p"], create);
    expect(p.bundle).toBe("/b");
    expect(p["pid-file"]).toBe("/p");
    expect(p._).toEqual(["ID"]);
  });

  test("delete ID --force", () => {
    const p = parseFlags(["ID", "--force"], del);
    expect(p.force).toBe(true);
    expect(p._).toEqual(["ID"]);
  });

  test("`--` ends options: everything after is positional", () => {
    const p = parseFlags(["--all", "--", "ID", "--not-a-flag", "-9"], kill);
    expect(p.all).toBe(true);
    expect(p._).toEqual(["ID", "--not-a-flag", "-9"]);
  });

  test("`--` as the last token", () => {
    const p = parseFlags(["ID", "--"], kill);
    expect(p._).toEqual(["ID"]);
  });
});

describe("parseFlags: exec (stopAfterPositionals = 1)", () => {
  test("exec's parse options", () => {
    expect(execParse.stopAfterPositionals).toBe(1);
    expect(execParse.repeatable).toContain("env");
  });

  test('exec ID sh -c "exit 3" keeps the command intact', () => {
    const p = parseFlags(["ID", "sh", "-c", "exit 3"], exec, execParse);
    expect(p._).toEqual(["ID", "sh", "-c", "exit 3"]);
    expect(p.cwd).toBeUndefined();
  });

  test("exec ID ls -la: -la belongs to ls, not to exec", () => {
    const p = parseFlags(["ID", "ls", "-la"], exec, execParse);
    expect(p._).toEqual(["ID", "ls", "-la"]);
  });

  test("exec flags before the id are parsed; flags after the id are the command's", () => {
    const p = parseFlags(["--tty", "--cwd", "/tmp", "-d", "ID", "sh", "--tty", "--cwd", "/x", "-d"], exec, execParse);
    expect(p.tty).toBe(true);
    expect(p.cwd).toBe("/tmp");
    expect(p.detach).toBe(true);
    expect(p._).toEqual(["ID", "sh", "--tty", "--cwd", "/x", "-d"]);
  });

  test("an unknown flag after the id is not an error (it is the command's)", () => {
    const p = parseFlags(["ID", "--bogus", "x"], exec, execParse);
    expect(p._).toEqual(["ID", "--bogus", "x"]);
  });

  test("exec --process file ID (no inline command)", () => {
    const p = parseFlags(["--process", "/tmp/p.json", "ID"], exec, execParse);
    expect(p.process).toBe("/tmp/p.json");
    expect(p._).toEqual(["ID"]);
  });

  test("repeatable --env A --env B (and -e, --env=)", () => {
    const p = parseFlags(["--env", "A=1", "--env", "B=2", "-e", "C=3", "--env=D=4", "ID", "env"], exec, execParse);
    expect(p.env).toEqual(["A=1", "B=2", "C=3", "D=4"]);
    expect(p._).toEqual(["ID", "env"]);
  });

  test("a single --env is still an array", () => {
    const p = parseFlags(["--env", "A=1", "ID", "env"], exec, execParse);
    expect(p.env).toEqual(["A=1"]);
  });

  test("repeatable --additional-gids / -g and --cap / -c", () => {
    const p = parseFlags(["-g", "10", "--additional-gids", "20", "-c", "CAP_KILL", "--cap=CAP_CHOWN", "ID", "id"], exec, execParse);
    expect(p["additional-gids"]).toEqual(["10", "20"]);
    expect(p.cap).toEqual(["CAP_KILL", "CAP_CHOWN"]);
  });

  test("without the repeatable option the last --env wins (plain string)", () => {
    const p = parseFlags(["--env", "A=1", "--env", "B=2", "ID"], exec);
    expect(p.env).toBe("B=2");
  });
});

describe("parseFlags: errors", () => {
  test("unknown long flag → usage 'flag provided but not defined: -x'", () => {
    const err = usageError(() => parseFlags(["--x", "ID"], kill));
    expect(err.message).toBe("flag provided but not defined: -x");
  });

  test("unknown single-dash flag → same message", () => {
    const err = usageError(() => parseFlags(["-x", "ID"], kill));
    expect(err.message).toBe("flag provided but not defined: -x");
  });

  test("unknown flag with =value names only the flag", () => {
    const err = usageError(() => parseFlags(["--x=1", "ID"], kill));
    expect(err.message).toBe("flag provided but not defined: -x");
  });

  test("unknown flag after a positional (interspersed) is still an error", () => {
    const err = usageError(() => parseFlags(["ID", "--nope"], del));
    expect(err.message).toBe("flag provided but not defined: -nope");
  });

  test("missing value for a string flag → usage", () => {
    const err = usageError(() => parseFlags(["ID", "--bundle"], create));
    expect(err.message).toContain("-bundle");
    expect(err.message).toContain("argument");
  });

  test("missing value for a short alias → usage", () => {
    usageError(() => parseFlags(["ID", "-b"], create));
  });

  test("a flag of another command is not defined (create has no --detach)", () => {
    const err = usageError(() => parseFlags(["--detach", "ID"], create));
    expect(err.message).toBe("flag provided but not defined: -detach");
  });

  test("positional arg names are not flags (--id is unknown)", () => {
    const err = usageError(() => parseFlags(["--id", "x"], create));
    expect(err.message).toBe("flag provided but not defined: -id");
  });
});

describe("splitGlobal", () => {
  test("--root X --log F --log-format json create --bundle B ID", () => {
    const r = splitGlobal(["--root", "/x", "--log", "/f.log", "--log-format", "json", "create", "--bundle", "/b", "ID"]);
    expect(r.globals.root).toBe("/x");
    expect(r.globals.log).toBe("/f.log");
    expect(r.globals["log-format"]).toBe("json");
    expect(r.globals._).toEqual([]);
    expect(r.verb).toBe("create");
    expect(r.rest).toEqual(["--bundle", "/b", "ID"]);
    // and the rest parses with create's flags
    const p = parseFlags(r.rest, create);
    expect(p.bundle).toBe("/b");
    expect(p._).toEqual(["ID"]);
  });

  test("--root=X state ID", () => {
    const r = splitGlobal(["--root=/x", "state", "ID"]);
    expect(r.globals.root).toBe("/x");
    expect(r.verb).toBe("state");
    expect(r.rest).toEqual(["ID"]);
  });

  test("-root X (single dash) and -log-format=json", () => {
    const r = splitGlobal(["-root", "/x", "-log-format=json", "list"]);
    expect(r.globals.root).toBe("/x");
    expect(r.globals["log-format"]).toBe("json");
    expect(r.verb).toBe("list");
    expect(r.rest).toEqual([]);
  });

  test("--debug --systemd-cgroup kill ID 9", () => {
    const r = splitGlobal(["--debug", "--systemd-cgroup", "kill", "ID", "9"]);
    expect(r.globals.debug).toBe(true);
    expect(r.globals["systemd-cgroup"]).toBe(true);
    expect(r.verb).toBe("kill");
    expect(r.rest).toEqual(["ID", "9"]);
  });

  test("defaults when no globals are given", () => {
    const r = splitGlobal(["list"]);
    expect(r.globals.root).toBe("/run/nexcage");
    expect(r.globals["log-format"]).toBe("text");
    expect(r.globals.rootless).toBe("auto");
    expect(r.globals.debug).toBeUndefined();
    expect(r.verb).toBe("list");
    expect(r.rest).toEqual([]);
  });

  test("flags after the verb are the verb's, not globals", () => {
    const r = splitGlobal(["--debug", "delete", "--force", "ID"]);
    expect(r.globals.debug).toBe(true);
    expect(r.globals.force).toBeUndefined();
    expect(r.verb).toBe("delete");
    expect(r.rest).toEqual(["--force", "ID"]);
  });

  test("no verb", () => {
    const r = splitGlobal([]);
    expect(r.verb).toBeUndefined();
    expect(r.rest).toEqual([]);
    const r2 = splitGlobal(["--root", "/x"]);
    expect(r2.verb).toBeUndefined();
    expect(r2.globals.root).toBe("/x");
  });

  test("--version and -v", () => {
    const r = splitGlobal(["--version"]);
    expect(r.globals.version).toBe(true);
    expect(r.verb).toBeUndefined();
    expect(splitGlobal(["-v"]).globals.version).toBe(true);
  });

  test("--help / -h", () => {
    expect(splitGlobal(["--help"]).globals.help).toBe(true);
    expect(splitGlobal(["-h", "create"]).globals.help).toBe(true);
  });

  test("--config and --rootless/--criu values are consumed, not taken as the verb", () => {
    const r = splitGlobal(["--config", "/etc/n.json", "--rootless", "true", "--criu", "/usr/sbin/criu", "run", "ID"]);
    expect(r.globals.config).toBe("/etc/n.json");
    expect(r.globals.rootless).toBe("true");
    expect(r.globals.criu).toBe("/usr/sbin/criu");
    expect(r.verb).toBe("run");
    expect(r.rest).toEqual(["ID"]);
  });

  test("`--` before the verb", () => {
    const r = splitGlobal(["--root", "/x", "--", "state", "ID"]);
    expect(r.globals.root).toBe("/x");
    expect(r.verb).toBe("state");
    expect(r.rest).toEqual(["ID"]);
  });

  test("an exec command line after the verb is left alone", () => {
    const r = splitGlobal(["--root", "/x", "exec", "-t", "ID", "sh", "-c", "exit 3"]);
    expect(r.verb).toBe("exec");
    expect(r.rest).toEqual(["-t", "ID", "sh", "-c", "exit 3"]);
    const p = parseFlags(r.rest, exec, execParse);
    expect(p.tty).toBe(true);
    expect(p._).toEqual(["ID", "sh", "-c", "exit 3"]);
  });

  test("unknown global flag → usage", () => {
    const err = usageError(() => splitGlobal(["--bogus", "list"]));
    expect(err.message).toBe("flag provided but not defined: -bogus");
  });

  test("global string flag without a value → usage", () => {
    usageError(() => splitGlobal(["--root"]));
  });

  test("global boolean with an invalid value → usage", () => {
    usageError(() => splitGlobal(["--debug=maybe", "list"]));
  });

  test("globalArgs contains runc's global flags", () => {
    for (const k of ["root", "log", "log-format", "debug", "systemd-cgroup", "rootless", "criu"]) expect(globalArgs).toHaveProperty(k);
  });
});
