"""Versioned schema migrations, applied explicitly at service start (`await migrate(pool)`).

All pending migrations run in one transaction under a transaction-scoped advisory
lock: a second process starting at the same moment waits for the first, then finds
nothing left to do.  PostgreSQL DDL is transactional, so a failed migration leaves
the schema exactly as it was.

The metrics table is the one place where the two storage paths differ: a TimescaleDB
hypertable when the extension can be created, otherwise a table with native daily
range partitions (see store.partitions).  Which one was chosen is recorded in
`store_settings` so the queries, the retention job and `doctor` agree.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.store.db import SCHEMA_TABLE, schema_version
from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES

log = logging.getLogger(__name__)

# Arbitrary but fixed: every ai-sysadmin process migrating this database takes this lock.
ADVISORY_LOCK_KEY = 0x41_49_53_59_53  # "AISYS"

BACKEND_TIMESCALE = "timescaledb"
BACKEND_PARTITIONS = "partitions"


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)  # fixed vocabularies from the code, not input


V1_CORE = f"""
CREATE TABLE store_settings (
    key text PRIMARY KEY,
    value text NOT NULL
);

-- Resume points of the input streams (journal cursor, ...), written in the same
-- transaction as the records they cover.
CREATE TABLE cursors (
    stream text PRIMARY KEY,
    cursor text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every write is a batch with a client-chosen id; replaying a batch (spool flush after
-- an ambiguous commit) finds its id here and is skipped: exactly once.
CREATE TABLE ingest_batches (
    batch_id uuid PRIMARY KEY,
    kind text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_batches_applied_at ON ingest_batches (applied_at);

CREATE TABLE incidents (
    id bigserial PRIMARY KEY,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
    severity text NOT NULL CHECK (severity IN ({_in_list(SEVERITIES)})),
    category text NOT NULL CHECK (category IN ({_in_list(CATEGORIES)})),
    unit text,
    opened_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    summary text,
    diagnosis text,
    resolution text,
    outcome text
);
CREATE INDEX incidents_status ON incidents (status, updated_at DESC);

CREATE TABLE triggers (
    id text PRIMARY KEY,
    severity text NOT NULL CHECK (severity IN ({_in_list(SEVERITIES)})),
    category text NOT NULL CHECK (category IN ({_in_list(CATEGORIES)})),
    source text NOT NULL,
    unit text,
    template text NOT NULL,
    template_id text NOT NULL,
    count bigint NOT NULL CHECK (count >= 0),
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    sample jsonb NOT NULL DEFAULT '[]',
    summary text,
    host text,
    boot_id text,
    fields jsonb NOT NULL DEFAULT '{{}}',
    incident_id bigint REFERENCES incidents (id) ON DELETE SET NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triggers_last_seen ON triggers (last_seen DESC);
CREATE INDEX triggers_incident ON triggers (incident_id) WHERE incident_id IS NOT NULL;

CREATE TABLE findings (
    id bigserial PRIMARY KEY,
    incident_id bigint REFERENCES incidents (id) ON DELETE CASCADE,
    layer text NOT NULL,
    severity text NOT NULL CHECK (severity IN ({_in_list(SEVERITIES)})),
    title text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE actions (
    id bigserial PRIMARY KEY,
    incident_id bigint REFERENCES incidents (id) ON DELETE SET NULL,
    finding_id bigint REFERENCES findings (id) ON DELETE SET NULL,
    action text NOT NULL,
    params jsonb NOT NULL DEFAULT '{{}}',
    risk text NOT NULL,
    status text NOT NULL DEFAULT 'proposed' CHECK (status IN
        ('proposed', 'approved', 'rejected', 'executing', 'succeeded', 'failed', 'verified')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Who moved an action to which state and why: one row per step.
CREATE TABLE action_steps (
    id bigserial PRIMARY KEY,
    action_id bigint NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
    from_status text,
    to_status text NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL DEFAULT '',
    at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    event text NOT NULL,
    subject text,
    detail jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Append-only: UPDATE is always refused; DELETE only by the retention job, which
-- sets ai_sysadmin.retention for its own transaction.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('ai_sysadmin.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE llm_calls (
    at timestamptz NOT NULL,
    role text NOT NULL,
    model text NOT NULL,
    kind text NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    latency_s double precision NOT NULL,
    outcome text NOT NULL
);
CREATE INDEX llm_calls_at ON llm_calls (at);
"""

METRICS_COLUMNS = """
    ts timestamptz NOT NULL,
    name text NOT NULL,
    subject text NOT NULL DEFAULT '',
    value double precision NOT NULL
"""


async def _v2_metrics(conn: psycopg.AsyncConnection) -> None:
    """The metrics time series: hypertable when TimescaleDB can be created, else partitions."""
    backend = BACKEND_PARTITIONS
    if await timescale_available(conn):
        try:
            async with conn.transaction():  # a savepoint: a refused CREATE EXTENSION must not abort us
                await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            backend = BACKEND_TIMESCALE
        except psycopg.Error as exc:
            log.warning("TimescaleDB is installed but cannot be enabled (%s); using native partitions", exc)
    if backend == BACKEND_TIMESCALE:
        # Not run on the development machines (the extension is not packaged there).
        await conn.execute(f"CREATE TABLE metrics ({METRICS_COLUMNS})")
        await conn.execute("SELECT create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day')")
        # Compression and its policy exist only in the TSL (community) build; the Apache
        # build (nixpkgs timescaledb-apache, the module's free default) has hypertables and
        # drop_chunks, which is all retention needs.
        if await timescale_edition(conn) != "apache":
            await conn.execute(
                "ALTER TABLE metrics SET (timescaledb.compress, timescaledb.compress_segmentby = 'name')"
            )
            await conn.execute("SELECT add_compression_policy('metrics', interval '2 days')")
    else:
        await conn.execute(f"CREATE TABLE metrics ({METRICS_COLUMNS}) PARTITION BY RANGE (ts)")
        # Catches rows outside every daily partition (a skewed clock, an old spool); the
        # retention job empties it like any partition.
        await conn.execute("CREATE TABLE metrics_default PARTITION OF metrics DEFAULT")
    await conn.execute("CREATE INDEX metrics_name_ts ON metrics (name, ts DESC)")
    await conn.execute("INSERT INTO store_settings (key, value) VALUES ('metrics_backend', %s)", (backend,))


# Statuses of an action (docs/actions.md): queued waits for a person; approved waits for
# the executor; recorded (observe), refused, rejected, expired, dry-run, verified, failed and
# interrupted are final.  'proposed' and 'succeeded' stay valid for rows written before v4.
ACTION_STATUSES = (
    "proposed",
    "queued",
    "approved",
    "rejected",
    "executing",
    "succeeded",
    "failed",
    "verified",
    "recorded",
    "refused",
    "interrupted",
    "expired",
    "dry-run",
)

V4_ACTIONS = f"""
ALTER TABLE actions DROP CONSTRAINT actions_status_check;
ALTER TABLE actions ADD CONSTRAINT actions_status_check CHECK (status IN ({_in_list(ACTION_STATUSES)}));
ALTER TABLE actions ALTER COLUMN risk DROP NOT NULL;  -- an unknown action id has no catalog risk
ALTER TABLE actions
    ADD COLUMN decision text CHECK (decision IN ('record', 'queue', 'execute', 'refuse')),
    ADD COLUMN decision_reason text NOT NULL DEFAULT '',
    ADD COLUMN proposal_reason text NOT NULL DEFAULT '',
    ADD COLUMN source text,
    ADD COLUMN proposed_by text,
    ADD COLUMN target text,
    ADD COLUMN errors jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN started_at timestamptz,
    ADD COLUMN finished_at timestamptz,
    ADD COLUMN executed_by text,
    ADD COLUMN result jsonb,
    ADD COLUMN verification jsonb;
CREATE INDEX actions_target_started ON actions (target, started_at DESC) WHERE started_at IS NOT NULL;
CREATE INDEX actions_status ON actions (status, id);

-- Approvals: a person's carries an HMAC signature the orchestrator cannot make (it has
-- no key); the policy's own (kind 'policy') is re-decided by the executor from its config.
CREATE TABLE action_approvals (
    id bigserial PRIMARY KEY,
    action_id bigint NOT NULL REFERENCES actions (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('person', 'policy')),
    approver text NOT NULL,
    reason text NOT NULL DEFAULT '',
    approved_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    signature text
);
CREATE INDEX action_approvals_action ON action_approvals (action_id, id DESC);

-- A failed verification opens a breaker on its target; only a person clears it.
CREATE TABLE action_breakers (
    id bigserial PRIMARY KEY,
    target text NOT NULL,
    action_id bigint REFERENCES actions (id) ON DELETE SET NULL,
    reason text NOT NULL,
    tripped_at timestamptz NOT NULL DEFAULT now(),
    cleared_at timestamptz,
    cleared_by text
);
CREATE UNIQUE INDEX action_breakers_open ON action_breakers (target) WHERE cleared_at IS NULL;

-- The executor LISTENs on this channel; any writer that approves (service, CLI, API) wakes it.
CREATE FUNCTION actions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ai_sysadmin_actions', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER actions_notify AFTER INSERT OR UPDATE OF status ON actions
    FOR EACH ROW WHEN (NEW.status = 'approved') EXECUTE FUNCTION actions_notify();
"""


V5_INCIDENTS_REVIEW = """
-- Incident lifecycle as the correlator keeps it (issue 12): which units, how sure,
-- when its triggers started/stopped, why it resolved, how often it came back.
ALTER TABLE incidents
    ADD COLUMN units text[] NOT NULL DEFAULT '{}',
    ADD COLUMN confidence text NOT NULL DEFAULT 'normal' CHECK (confidence IN ('low', 'normal')),
    ADD COLUMN first_trigger_at timestamptz,
    ADD COLUMN last_trigger_at timestamptz,
    ADD COLUMN acknowledged_at timestamptz,
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN reopened integer NOT NULL DEFAULT 0,
    ADD COLUMN resolved_reason text;

-- One row per L3 review: when, why, what it cost and what came of it.
CREATE TABLE reviews (
    id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    reason text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    status text,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    model text,
    prompt_tokens integer NOT NULL DEFAULT 0,
    cached_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    context_tokens integer NOT NULL DEFAULT 0,
    latency_s double precision,
    incident_ids bigint[] NOT NULL DEFAULT '{}',
    answer jsonb
);
CREATE INDEX reviews_started_at ON reviews (started_at DESC);

ALTER TABLE findings
    ADD COLUMN review_id bigint REFERENCES reviews (id) ON DELETE SET NULL,
    ADD COLUMN category text,
    ADD COLUMN advice text;
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[psycopg.AsyncConnection], Awaitable[None]]


def _sql(text: str) -> Callable[[psycopg.AsyncConnection], Awaitable[None]]:
    async def run(conn: psycopg.AsyncConnection) -> None:
        await conn.execute(text)  # fixed text from this module

    return run


# Hardening (issue 9): LLM call accounting per layer and incident; the number of the
# L1 checkpoint whose state file goes with the stored cursor (trigger/checkpoints.py).
V3_HARDENING = """
ALTER TABLE cursors ADD COLUMN checkpoint bigint;
ALTER TABLE llm_calls
    ADD COLUMN layer text,
    ADD COLUMN incident_id bigint;
CREATE INDEX llm_calls_layer_at ON llm_calls (layer, at);
CREATE INDEX llm_calls_incident ON llm_calls (incident_id) WHERE incident_id IS NOT NULL;
"""


# Decisions the orchestrator cannot rewrite (issue 23).  The orchestrator's role owns these
# tables, and an owner can drop a trigger; so the records that must survive it live in the
# executor's own schema (store/ledger.py), and these triggers are the second line:
# * audit_log: append-only for every role -- no setting bypasses it (the retention job no
#   longer prunes it), and TRUNCATE, which row triggers never see, is refused too;
# * actions: a rejection is final, the row of a rejected action cannot move or be deleted;
# * action_approvals.digest: what the person approved (signing.digest), under the signature.
V6_DECISIONS = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION actions_rejection_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'action % was rejected; a rejection is final (DELETE refused)', OLD.id;
    END IF;
    RAISE EXCEPTION 'action % was rejected; a rejection is final (status % refused)', OLD.id, NEW.status;
END $$;
CREATE TRIGGER actions_rejection_final BEFORE UPDATE OF status ON actions
    FOR EACH ROW WHEN (OLD.status = 'rejected' AND NEW.status IS DISTINCT FROM 'rejected')
    EXECUTE FUNCTION actions_rejection_final();
CREATE TRIGGER actions_rejection_kept BEFORE DELETE ON actions
    FOR EACH ROW WHEN (OLD.status = 'rejected') EXECUTE FUNCTION actions_rejection_final();

ALTER TABLE action_approvals ADD COLUMN digest text;
"""


# The watch after a switch (issue 20, docs/preflight.md): each NixOS switch the service
# noticed (generation N -> M, the preflight report for it) and the incidents attributed to
# it (new failures of units the switch touched, within review.switch_window).
V7_SWITCHES = """
CREATE TABLE switches (
    id bigserial PRIMARY KEY,
    switched_at timestamptz NOT NULL,
    noticed_at timestamptz NOT NULL DEFAULT now(),
    from_generation integer,
    to_generation integer,
    from_path text,
    to_path text NOT NULL,
    verdict text CHECK (verdict IN ('ok', 'warn', 'block')),
    preflight jsonb NOT NULL,
    touched text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX switches_at ON switches (switched_at DESC);
CREATE TABLE switch_incidents (
    incident_id bigint PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    switch_id bigint NOT NULL REFERENCES switches (id) ON DELETE CASCADE,
    units text[] NOT NULL,
    failed_at timestamptz NOT NULL,
    attributed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX switch_incidents_switch ON switch_incidents (switch_id);
"""

# What a model's proposal may rest on (issues 19 and 23): the actions an incident's
# evidence supports (its deterministic candidates and their families, written by the
# incident service), and, on each action, why a model's proposal contradicts that
# evidence (actions/binding.py; NULL when it does not, or for a person's or the rules').
V8_CONTRADICTS = """
ALTER TABLE incidents ADD COLUMN candidate_actions text[];
ALTER TABLE actions ADD COLUMN contradicts text;
"""

# Many hosts (issue 22, docs/fleet.md): the host dimension and member isolation.
#
# * `host` on every table whose rows belong to one host.  Existing rows, and rows written
#   by code that does not name a host, are the local host's: the column's DEFAULT is a
#   constant (the local host id, passed to `migrate`), which PostgreSQL adds without
#   rewriting the table.  triggers.host already existed (the journal's _HOSTNAME, NULL
#   when an entry had none): a NULL now means the local host, filled in by a row trigger
#   because the writer names the column explicitly.
# * Indexes that start with host, for the queries that will filter by it.
# * Row-level security on the tables a member's database role is granted
#   (store/fleet.py): a role named ai_sysadmin_member_<host> sees and writes only rows of
#   <host>; every other role keeps what its GRANTs give it (the owner bypasses RLS).  A
#   member is recognised by its name, so a member without a host matches no row: the
#   policy fails closed.  Not on a TimescaleDB hypertable: its chunks inherit GRANTs but
#   not policies (timescale/timescaledb#7830) and RLS refuses compression (#6827).
#   Migration 12 therefore takes every privilege on `metrics` from member roles, on both
#   backends: they write through a function that sets the host itself.
HOST_TABLES = ("incidents", "actions", "metrics", "switches")
MEMBER_ROLE_PREFIX = "ai_sysadmin_member_"
V9_INDEXES = """
CREATE INDEX triggers_host_last_seen ON triggers (host, last_seen DESC);
CREATE INDEX incidents_host_status ON incidents (host, status, updated_at DESC);
CREATE INDEX actions_host_status ON actions (host, status, id);
CREATE INDEX metrics_host_name_ts ON metrics (host, name, ts DESC);
CREATE INDEX switches_host_at ON switches (host, switched_at DESC);
"""
V9_MEMBER_HOST = f"""
-- The host of the current role when it is a fleet member's, else NULL.  Wrapped in a
-- sub-select in the policies so it runs once per statement, not once per row.
CREATE FUNCTION fleet_member_host() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN starts_with(current_user::text, '{MEMBER_ROLE_PREFIX}')
                THEN substr(current_user::text, {len(MEMBER_ROLE_PREFIX) + 1}) END
$$;
CREATE FUNCTION fleet_fill_host() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.host IS NULL THEN
        NEW.host := TG_ARGV[0];
    END IF;
    RETURN NEW;
END $$;
"""
_FLEET_POLICY = (
    "CREATE POLICY fleet_member_host ON {table} FOR ALL"
    " USING ((SELECT fleet_member_host()) IS NULL OR host = (SELECT fleet_member_host()))"
    " WITH CHECK ((SELECT fleet_member_host()) IS NULL OR host = (SELECT fleet_member_host()))"
)
# The tables a member role was granted anything on in 9 (store/fleet.py MEMBER_GRANTS); since
# migration 12 it holds nothing on metrics, whose policy stays as a second line.
RLS_TABLES = ("metrics", "actions")


async def _v9_hosts(conn: psycopg.AsyncConnection) -> None:
    cur = await conn.execute("SELECT current_setting('ai_sysadmin.local_host', true)")
    host = (await cur.fetchone())[0]  # type: ignore[index]
    if not host:
        raise RuntimeError("migration 9 needs the local host id (migrate(..., host=...))")
    lit = sql.Literal(host)
    for table in HOST_TABLES:
        await conn.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN host text NOT NULL DEFAULT {}").format(sql.Identifier(table), lit)
        )
    await conn.execute(sql.SQL("UPDATE triggers SET host = {} WHERE host IS NULL").format(lit))
    await conn.execute(
        sql.SQL("ALTER TABLE triggers ALTER COLUMN host SET DEFAULT {}, ALTER COLUMN host SET NOT NULL").format(lit)
    )
    await conn.execute(V9_MEMBER_HOST)
    await conn.execute(
        sql.SQL(
            "CREATE TRIGGER triggers_fill_host BEFORE INSERT OR UPDATE OF host ON triggers "
            "FOR EACH ROW EXECUTE FUNCTION fleet_fill_host({})"
        ).format(lit)
    )
    await conn.execute(V9_INDEXES)
    backend = await metrics_backend(conn)
    for table in RLS_TABLES:
        if table == "metrics" and backend == BACKEND_TIMESCALE:
            continue
        await conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        await conn.execute(sql.SQL(_FLEET_POLICY).format(table=sql.Identifier(table)))
    await conn.execute("INSERT INTO store_settings (key, value) VALUES ('local_host', %s)", (host,))


# Fleet incidents (issue 22, docs/fleet.md#fleet-incidents): the hosts an incident was seen
# on, each with when it reached that host.  `incidents.host` stays the host it opened on;
# an incident with more than one row here is a fleet incident (the same rule on the same
# unit of several hosts within review.fleet_window).
V10_INCIDENT_HOSTS = """
CREATE TABLE incident_hosts (
    incident_id bigint NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    host text NOT NULL,
    first_seen timestamptz NOT NULL,
    PRIMARY KEY (incident_id, host)
);
CREATE INDEX incident_hosts_host ON incident_hosts (host, incident_id);
"""


# A member's executor (issue 22, docs/fleet.md, docs/security.md): what its role needs to
# claim, run and record the actions addressed to its host, and nothing of another host's.
#
# * Row-level security, with the same fail-closed test of the role's name as migration 9,
#   on every further table a member's role is granted anything on: by `host` where the
#   table has one, else by the action or incident the row belongs to (a sub-select on
#   `actions`/`incidents`, itself under the member's policy).  Every other role keeps what
#   its GRANTs give it.
# * A member moves its own actions only as an executor does: approved -> executing or a
#   refusal, executing -> its outcome.  It cannot approve (no INSERT on action_approvals,
#   and no move into `approved`), reject, or requeue; the column grants (store/fleet.py)
#   leave it no way to change what an action is, or its host.
# * A NOTIFY on `ai_sysadmin_host_actions` whose payload is the host, when an action
#   becomes approved: a member LISTENs there (it opens no port).  Any role may NOTIFY any
#   channel, so the payload is only a hint: the executor re-reads its own rows.
# The GRANTs themselves are store/fleet.py's MEMBER_GRANTS, given to the member roles
# that already exist here and by `create_member_role` to new ones.
HOST_CHANNEL = "ai_sysadmin_host_actions"
_MEMBER_OWN_ROW = "(SELECT fleet_member_host()) IS NULL OR {test}"
V11_MEMBER_POLICIES: tuple[tuple[str, str], ...] = (
    ("incidents", "host = (SELECT fleet_member_host())"),
    ("triggers", "host = (SELECT fleet_member_host())"),
    ("action_steps", "EXISTS (SELECT 1 FROM actions a WHERE a.id = action_id)"),
    ("action_approvals", "EXISTS (SELECT 1 FROM actions a WHERE a.id = action_id)"),
    ("action_breakers", "EXISTS (SELECT 1 FROM actions a WHERE a.id = action_id)"),
    ("switch_incidents", "EXISTS (SELECT 1 FROM incidents i WHERE i.id = incident_id)"),
    (
        "audit_log",
        "subject ~ '^action:[0-9]{1,18}$' AND EXISTS (SELECT 1 FROM actions a WHERE a.id = substr(subject, 8)::bigint)",
    ),
)
V11_MEMBER_EXECUTOR = f"""
CREATE FUNCTION actions_member_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF fleet_member_host() IS NOT NULL AND NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'approved' AND NEW.status IN ('executing', 'refused', 'expired', 'dry-run'))
        OR (OLD.status = 'executing' AND NEW.status IN ('verified', 'failed', 'interrupted'))
    ) THEN
        RAISE EXCEPTION 'a fleet member runs approved actions only: action % may not move from % to %',
            OLD.id, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER actions_member_moves BEFORE UPDATE OF status ON actions
    FOR EACH ROW EXECUTE FUNCTION actions_member_moves();

CREATE OR REPLACE FUNCTION actions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ai_sysadmin_actions', NEW.id::text);
    PERFORM pg_notify('{HOST_CHANNEL}', NEW.host);
    RETURN NEW;
END $$;
"""


async def _v11_member_executor(conn: psycopg.AsyncConnection) -> None:
    for table, test in V11_MEMBER_POLICIES:
        check = sql.SQL(_MEMBER_OWN_ROW.format(test=test))  # fixed text from this module
        await conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
        await conn.execute(
            sql.SQL("CREATE POLICY fleet_member_host ON {} FOR ALL USING ({}) WITH CHECK ({})").format(
                sql.Identifier(table), check, check
            )
        )
    await conn.execute(V11_MEMBER_EXECUTOR)
    from ai_sysadmin.store import fleet  # its grants; fleet imports this module

    for host in await fleet.member_roles(conn):
        await fleet.grant_member(conn, host)


# A member's metrics through one function (issue 22, docs/fleet.md#the-member-collector):
# isolation that holds on both storage backends.  Migration 9's policy on `metrics` does
# not reach a TimescaleDB hypertable's chunks (timescale/timescaledb#7830), so a member's
# role holds no privilege on `metrics` at all (store/fleet.py revokes what 9 granted) and
# writes only through `ai_sysadmin_member_metrics`, which runs as its owner -- the role
# that migrates, which owns `metrics` -- and takes the host from the caller's *login* role
# (`session_user`; inside a SECURITY DEFINER function `current_user` is the owner), with
# migration 9's test of the name: no member prefix, or nothing after it, is refused, so a
# role not named as a member (the API's, granted EXECUTE by mistake) writes nothing.
# There is no host parameter to forge.  The search path is fixed, with pg_temp last and
# the table qualified, so neither a temporary table nor a function of the caller's can
# stand in for ours.  The row bound keeps one call from bloating one transaction.  RLS
# on `metrics` stays (defence in depth: the owner bypasses it).
MEMBER_METRICS_FUNCTION = "ai_sysadmin_member_metrics"
MEMBER_METRICS_SIGNATURE = f"{MEMBER_METRICS_FUNCTION}(timestamptz[], text[], text[], double precision[])"
MEMBER_METRICS_MAX_ROWS = 10_000
V12_MEMBER_METRICS = """
CREATE FUNCTION {schema}.ai_sysadmin_member_metrics(
    p_ts timestamptz[], p_name text[], p_subject text[], p_value double precision[]
) RETURNS integer LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, {schema}, pg_temp AS $$
DECLARE
    v_host text := CASE WHEN starts_with(session_user::text, {prefix})
                        THEN substr(session_user::text, {host_from}) END;
    v_rows integer := cardinality(p_ts);
BEGIN
    IF v_host IS NULL OR v_host = '' THEN
        RAISE EXCEPTION 'ai_sysadmin_member_metrics: % is not a fleet member''s role', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_rows IS NULL OR cardinality(p_name) IS DISTINCT FROM v_rows
            OR cardinality(p_subject) IS DISTINCT FROM v_rows OR cardinality(p_value) IS DISTINCT FROM v_rows THEN
        RAISE EXCEPTION 'ai_sysadmin_member_metrics: ts, name, subject and value must be arrays of one length '
            '(got %, %, %, %)', cardinality(p_ts), cardinality(p_name), cardinality(p_subject), cardinality(p_value)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_rows > {max_rows} THEN
        RAISE EXCEPTION 'ai_sysadmin_member_metrics: % rows in one call, at most %', v_rows, {max_rows}
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    INSERT INTO {schema}.metrics (ts, name, subject, value, host)
        SELECT u.ts, u.name, u.subject, u.value, v_host
        FROM unnest(p_ts, p_name, p_subject, p_value) AS u(ts, name, subject, value);
    RETURN v_rows;
END $$;
REVOKE ALL ON FUNCTION {schema}.ai_sysadmin_member_metrics(timestamptz[], text[], text[], double precision[])
    FROM PUBLIC;
"""


async def _v12_member_metrics(conn: psycopg.AsyncConnection) -> None:
    schema = (await (await conn.execute("SELECT current_schema()")).fetchone())[0]  # type: ignore[index]
    await conn.execute(
        sql.SQL(V12_MEMBER_METRICS).format(  # fixed text from this module
            schema=sql.Identifier(schema),
            prefix=sql.Literal(MEMBER_ROLE_PREFIX),
            host_from=sql.Literal(len(MEMBER_ROLE_PREFIX) + 1),
            max_rows=sql.Literal(MEMBER_METRICS_MAX_ROWS),
        )
    )
    from ai_sysadmin.store import fleet  # its grants; fleet imports this module

    for host in await fleet.member_roles(conn):
        await fleet.grant_member(conn, host)  # EXECUTE on the function, nothing left on metrics


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "core tables: cursors, batches, incidents, triggers, findings, actions, audit, llm calls", _sql(V1_CORE)
    ),
    Migration(2, "metrics time series (TimescaleDB hypertable or daily partitions)", _v2_metrics),
    Migration(3, "hardening: llm_calls.layer/incident_id, cursors.checkpoint", _sql(V3_HARDENING)),
    Migration(4, "actions: decisions, approvals (signed), breakers, executor results, NOTIFY", _sql(V4_ACTIONS)),
    Migration(5, "incident lifecycle columns, reviews, finding advice", _sql(V5_INCIDENTS_REVIEW)),
    Migration(
        6, "decisions: audit log append-only for every role, rejections final, approval digests", _sql(V6_DECISIONS)
    ),
    Migration(7, "switches: NixOS switches noticed, their preflight, incidents attributed to them", _sql(V7_SWITCHES)),
    Migration(
        8,
        "incidents.candidate_actions, actions.contradicts: model proposals against the evidence",
        _sql(V8_CONTRADICTS),
    ),
    Migration(9, "hosts: host column and indexes, member row-level security", _v9_hosts),
    Migration(10, "incident_hosts: the hosts of each incident (fleet incidents)", _sql(V10_INCIDENT_HOSTS)),
    Migration(11, "fleet members' executors: grants and row-level security, host NOTIFY", _v11_member_executor),
    Migration(12, "fleet members' metrics through a SECURITY DEFINER function, on every backend", _v12_member_metrics),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version


async def timescale_available(conn: psycopg.AsyncConnection) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return await cur.fetchone() is not None


async def timescale_edition(conn: psycopg.AsyncConnection) -> str | None:
    """'apache' or 'timescale' (TSL) when the extension is loaded, else None."""
    cur = await conn.execute("SELECT current_setting('timescaledb.license', true)")
    row = await cur.fetchone()
    return (row[0] or None) if row else None


async def metrics_backend(conn: psycopg.AsyncConnection) -> str | None:
    """'timescaledb' or 'partitions'; None before migration 2."""
    cur = await conn.execute("SELECT to_regclass('store_settings') IS NOT NULL")
    if not (await cur.fetchone())[0]:  # type: ignore[index]
        return None
    cur = await conn.execute("SELECT value FROM store_settings WHERE key = 'metrics_backend'")
    row = await cur.fetchone()
    return row[0] if row else None


async def _migrate_conn(conn: psycopg.AsyncConnection, host: str) -> list[int]:
    applied: list[int] = []
    # Up to date: nothing to lock or create.  The API's and the executor's roles open the
    # store too and hold no CREATE privilege (store/grants.py); they must get here.
    async with conn.transaction():
        if await schema_version(conn) == latest_version():
            return applied
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        # What a migration needs to know about this host (9: the owner of existing rows).
        await conn.execute("SELECT set_config('ai_sysadmin.local_host', %s, true)", (host,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")
        current = int((await cur.fetchone())[0])  # type: ignore[index]
        if current > latest_version():
            raise RuntimeError(
                f"database schema v{current} is newer than this ai-sysadmin (v{latest_version()}); "
                "upgrade the package or point database.name elsewhere"
            )
        for m in MIGRATIONS:
            if m.version <= current:
                continue
            log.info("applying schema migration %d: %s", m.version, m.name)
            await m.apply(conn)
            await conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (%s, %s)", (m.version, m.name))
            applied.append(m.version)
    return applied


async def migrate(target: AsyncConnectionPool | psycopg.AsyncConnection, host: str | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied (empty when up to date).

    `host`: this host's id (config `fleet.host_id()`); existing rows become its rows.
    None: the host name, which is what `fleet.host` defaults to.
    """
    host = host or socket.gethostname()
    if isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            return await _migrate_conn(conn, host)
    return await _migrate_conn(target, host)
