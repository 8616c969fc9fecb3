-- The app's own bookkeeping: which demo data is loaded and when its dates were last moved.
CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE IF NOT EXISTS {{schema}}.app_meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every question asked of the assistant, how it was answered and how long it took.
CREATE TABLE IF NOT EXISTS {{schema}}.assistant_log (
    log_id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asked_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_name        TEXT NOT NULL,
    question         TEXT NOT NULL,
    source           TEXT NOT NULL CHECK (source IN ('genie', 'claude', 'sql', 'none')),
    sql_text         TEXT,
    duration_ms      INTEGER NOT NULL CHECK (duration_ms >= 0),
    cached           BOOLEAN NOT NULL DEFAULT false,
    outcome          TEXT NOT NULL CHECK (outcome IN
                       ('answered', 'failed', 'cancelled', 'timeout', 'refused', 'unavailable', 'no_sql')),
    row_count        INTEGER,
    error            TEXT,
    conversation_id  TEXT,
    message_id       TEXT
);
CREATE INDEX IF NOT EXISTS assistant_log_asked ON {{schema}}.assistant_log (asked_at DESC);
-- Claude's tokens for each answer (summary, follow-ups, note, or the SQL it wrote), as the serving
-- endpoint reported them; added after the first version of this table, hence ALTER.
ALTER TABLE {{schema}}.assistant_log ADD COLUMN IF NOT EXISTS claude_prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {{schema}}.assistant_log ADD COLUMN IF NOT EXISTS claude_completion_tokens INTEGER NOT NULL DEFAULT 0;

-- Thumbs up or down on an answer: one vote per person per answer (voting again changes it).
CREATE TABLE IF NOT EXISTS {{schema}}.assistant_feedback (
    feedback_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id         BIGINT NOT NULL REFERENCES {{schema}}.assistant_log,
    user_name      TEXT NOT NULL,
    rating         SMALLINT NOT NULL CHECK (rating IN (-1, 1)),
    sent_to_genie  BOOLEAN NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (log_id, user_name)
);

-- What the insight watcher found: each finding once under its key (rule, subject, direction, period),
-- with when it was first and last seen and who dismissed it.
CREATE TABLE IF NOT EXISTS {{schema}}.insights (
    insight_id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    insight_key     TEXT NOT NULL UNIQUE,
    rule            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    sentence        TEXT NOT NULL,
    question        TEXT NOT NULL,
    current_value   DOUBLE PRECISION,
    baseline_value  DOUBLE PRECISION,
    change          DOUBLE PRECISION,
    confidence      DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    size            INTEGER NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen       TIMESTAMPTZ NOT NULL DEFAULT now(),
    dismissed_by    TEXT,
    dismissed_at    TIMESTAMPTZ,
    CHECK ((dismissed_by IS NULL) = (dismissed_at IS NULL))
);
CREATE INDEX IF NOT EXISTS insights_first_seen ON {{schema}}.insights (first_seen DESC);

-- Each run of the watcher (whichever process ran it) and what its SQL cost.
CREATE TABLE IF NOT EXISTS {{schema}}.insight_runs (
    run_id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms   INTEGER NOT NULL,
    findings      INTEGER NOT NULL,
    new_insights  INTEGER NOT NULL,
    sql_ms        JSONB NOT NULL DEFAULT '{}',
    process       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS insight_runs_started ON {{schema}}.insight_runs (started_at DESC);

-- Values a rule compares with on its next run (the amenity lifts as last seen).
CREATE TABLE IF NOT EXISTS {{schema}}.insight_baseline (
    rule     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    value    DOUBLE PRECISION NOT NULL,
    seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, subject)
);

-- Each person's assistant conversations, and every question asked in them with its answer: the SQL,
-- a snapshot of the result (up to the row limit), the summary and follow-ups. Deleting a
-- conversation deletes its turns.
CREATE TABLE IF NOT EXISTS {{schema}}.conversations (
    conversation_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name        TEXT NOT NULL,
    title            TEXT NOT NULL,
    genie_id         TEXT,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS conversations_user ON {{schema}}.conversations (user_name, updated_at DESC);

CREATE TABLE IF NOT EXISTS {{schema}}.assistant_turns (
    turn_id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id  BIGINT NOT NULL REFERENCES {{schema}}.conversations ON DELETE CASCADE,
    user_name        TEXT NOT NULL,
    asked_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    question         TEXT NOT NULL,
    source           TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    sql_text         TEXT,
    genie_text       TEXT NOT NULL DEFAULT '',
    message          TEXT NOT NULL DEFAULT '',
    log_id           BIGINT,
    acted_as         TEXT,
    snapshot         JSONB,
    row_count        INTEGER NOT NULL DEFAULT 0,
    truncated        BOOLEAN NOT NULL DEFAULT false,
    summary          TEXT NOT NULL DEFAULT '',
    unusual          JSONB NOT NULL DEFAULT '["", ""]',
    follow_ups       JSONB NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS assistant_turns_conversation ON {{schema}}.assistant_turns (conversation_id, turn_id);

-- Verified questions: helpful answers from Genie an editor promoted, and each check that asked
-- Genie them again (same SQL, same result, a different result, or failed).
CREATE TABLE IF NOT EXISTS {{schema}}.verified_questions (
    verified_id  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    question     TEXT NOT NULL UNIQUE,
    sql_text     TEXT NOT NULL,
    row_count    INTEGER NOT NULL,
    checksum     TEXT NOT NULL,
    promoted_by  TEXT NOT NULL,
    promoted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    log_id       BIGINT
);

CREATE TABLE IF NOT EXISTS {{schema}}.verified_runs (
    run_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    total        INTEGER NOT NULL DEFAULT 0,
    matched      INTEGER NOT NULL DEFAULT 0,
    outcomes     JSONB NOT NULL DEFAULT '{}',
    process      TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS {{schema}}.verified_checks (
    check_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES {{schema}}.verified_runs ON DELETE CASCADE,
    verified_id  BIGINT NOT NULL REFERENCES {{schema}}.verified_questions ON DELETE CASCADE,
    checked_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome      TEXT NOT NULL CHECK (outcome IN ('same_sql', 'same_result', 'different_result', 'failed')),
    sql_text     TEXT,
    row_count    INTEGER,
    checksum     TEXT,
    detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS verified_checks_question ON {{schema}}.verified_checks (verified_id, check_id DESC);

-- Genie's question budget, shared by every process and instance: the questions sent in the last
-- minute (older rows are deleted as the budget is taken). Losing them in a crash only frees budget.
CREATE UNLOGGED TABLE IF NOT EXISTS {{schema}}.genie_sends (
    sent_at  TIMESTAMPTZ NOT NULL
);

-- The assistant's answers, shared by every process and instance: one row per question in its
-- context (who asks, the conversation's first question), kept until it expires or data is refreshed.
CREATE UNLOGGED TABLE IF NOT EXISTS {{schema}}.answer_cache (
    cache_key   TEXT PRIMARY KEY,
    answer      JSONB NOT NULL,
    stored_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS answer_cache_expires ON {{schema}}.answer_cache (expires_at);

-- Every process of the app, in every instance, with its latest figures (System shows them all).
CREATE UNLOGGED TABLE IF NOT EXISTS {{schema}}.app_processes (
    process  TEXT PRIMARY KEY,            -- host:pid
    seen_at  TIMESTAMPTZ NOT NULL,
    figures  JSONB NOT NULL
);

-- Who has which order open (its form) or is editing one of its cells in a grid, from every process
-- and instance. A place is kept while its process renews it and, for a cell, until `until`.
CREATE UNLOGGED TABLE IF NOT EXISTS {{schema}}.presence (
    session_id  TEXT NOT NULL,
    place       TEXT NOT NULL CHECK (place IN ('form', 'grid')),
    process     TEXT NOT NULL,                -- host:pid, which renews it
    user_name   TEXT NOT NULL,
    order_id    BIGINT NOT NULL,
    fields      TEXT[] NOT NULL DEFAULT '{}', -- being edited
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    until       TIMESTAMPTZ,
    PRIMARY KEY (session_id, place)
);
