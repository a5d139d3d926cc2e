// The sandbox server's schema, as an ordered list of migrations. PRAGMA user_version records how many have
// run; each runs in its own transaction, so a crash mid-migration leaves the previous version intact.
// Never edit a released migration: append a new one.
export const MIGRATIONS: readonly string[] = [
  // 1: tenants, tokens, sandboxes (the quota reservations), snapshots, background execs, audit
  `
  CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    -- quotas; NULL = unlimited
    max_sandboxes INTEGER,
    max_vcpus REAL,
    max_memory INTEGER,
    max_disk INTEGER,
    max_snapshots INTEGER
  );
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER REFERENCES tenants(id) ON DELETE CASCADE,
    admin INTEGER NOT NULL DEFAULT 0,
    -- sha256 of the secret part; the secret itself is never stored
    hash TEXT NOT NULL,
    created TEXT NOT NULL,
    expires TEXT,
    revoked TEXT,
    last_used TEXT,
    note TEXT
  );
  CREATE TABLE sandboxes (
    id TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    name TEXT,
    -- creating | running | paused | stopped | deleting | failed
    state TEXT NOT NULL,
    backend TEXT,
    image TEXT NOT NULL,
    bundle TEXT NOT NULL,
    -- the reservation: what this sandbox holds of its tenant's quota and of the host's capacity
    vcpus REAL NOT NULL,
    memory INTEGER NOT NULL,
    disk INTEGER NOT NULL,
    pids INTEGER NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    last_active INTEGER NOT NULL,
    ttl_seconds INTEGER,
    ttl_action TEXT,
    request TEXT NOT NULL,
    error TEXT
  );
  CREATE INDEX sandboxes_tenant ON sandboxes(tenant_id);
  CREATE TABLE snapshots (
    sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tenant_id INTEGER NOT NULL,
    created TEXT NOT NULL,
    -- 0 while being taken: counts against the quota already, removed again if the snapshot fails
    complete INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sandbox_id, name)
  );
  CREATE TABLE execs (
    id TEXT PRIMARY KEY,
    sandbox_id TEXT NOT NULL REFERENCES sandboxes(id) ON DELETE CASCADE,
    tenant_id INTEGER NOT NULL,
    command TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    exit_code INTEGER,
    pid INTEGER,
    dir TEXT NOT NULL
  );
  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    token_id TEXT,
    tenant TEXT,
    action TEXT NOT NULL,
    target TEXT,
    status INTEGER NOT NULL,
    result TEXT NOT NULL
  );
  CREATE INDEX audit_at ON audit(at);
  `,
];
