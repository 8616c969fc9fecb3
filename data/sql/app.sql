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
