// Failure injection for crash-safety tests: NEXCAGE_FAULT=<point>[,<point>...] makes this process SIGKILL
// itself the moment it reaches a named point, so a test crashes nexcage at an exact step of a multi-step
// operation instead of after a guessed sleep. Unset (always, outside tests) it costs one env lookup.
// Points are named `<operation>.<step>` (e.g. `create.after-launch`); README "Crash safety" lists them.
export function faultPoint(name: string): void {
  const want = process.env.NEXCAGE_FAULT;
  if (want && want.split(",").includes(name)) process.kill(process.pid, "SIGKILL");
}
