// How the server runs this same program's CLI (for exec): the compiled binary itself, or bun with the entry
// script when running from source; with the global flags that make it see the same runtime.
export function selfArgv(o: { root: string; config?: string | undefined; systemdCgroup?: boolean }): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || import.meta.path.startsWith("/$bunfs/");
  const base = compiled ? [process.execPath] : [process.execPath, Bun.main];
  return [...base, "--root", o.root, ...(o.config ? ["--config", o.config] : []), ...(o.systemdCgroup ? ["--systemd-cgroup"] : [])];
}
