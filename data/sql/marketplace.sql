-- Marketplace gold tables. On Lakebase these are synced tables (read-only to the app);
-- the embedded default creates them here and fills them with demo data.
CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE IF NOT EXISTS {{schema}}.city_investment (
    city               TEXT PRIMARY KEY,
    country            TEXT NOT NULL,
    total_viewers      BIGINT NOT NULL CHECK (total_viewers >= 0),
    total_bookers      BIGINT NOT NULL CHECK (total_bookers >= 0),
    total_completers   BIGINT NOT NULL CHECK (total_completers >= 0),
    conversion_rate    NUMERIC(6, 2) NOT NULL CHECK (conversion_rate BETWEEN 0 AND 100),
    estimated_revenue  NUMERIC(14, 2) NOT NULL CHECK (estimated_revenue >= 0),
    quadrant           TEXT NOT NULL CHECK (quadrant IN
                         ('Protect & Expand', 'Fix Conversion', 'Grow Demand', 'Maintain'))
);

-- Daily funnel per city, all seven stages; each stage is at most the one before it.
CREATE TABLE IF NOT EXISTS {{schema}}.city_funnel (
    city               TEXT NOT NULL,
    event_date         DATE NOT NULL,
    viewers            INTEGER NOT NULL CHECK (viewers >= 0),
    clickers           INTEGER NOT NULL,
    searchers          INTEGER NOT NULL,
    filterers          INTEGER NOT NULL,
    initiated_bookers  INTEGER NOT NULL,
    confirmed_bookers  INTEGER NOT NULL,
    completers         INTEGER NOT NULL CHECK (completers >= 0),
    PRIMARY KEY (city, event_date),
    CHECK (viewers >= clickers AND clickers >= searchers AND searchers >= filterers
           AND filterers >= initiated_bookers AND initiated_bookers >= confirmed_bookers
           AND confirmed_bookers >= completers)
);
CREATE INDEX IF NOT EXISTS city_funnel_date ON {{schema}}.city_funnel (event_date);

CREATE TABLE IF NOT EXISTS {{schema}}.property_performance (
    property_id           TEXT PRIMARY KEY,
    property_name         TEXT NOT NULL,
    city                  TEXT NOT NULL,
    property_type         TEXT NOT NULL,
    views                 INTEGER NOT NULL CHECK (views >= 0),
    completed_bookings    INTEGER NOT NULL CHECK (completed_bookings >= 0),
    completion_rate       NUMERIC(6, 2) NOT NULL CHECK (completion_rate BETWEEN 0 AND 100),
    payment_fail_rate     NUMERIC(6, 2) NOT NULL CHECK (payment_fail_rate BETWEEN 0 AND 100),
    cancel_rate           NUMERIC(6, 2) NOT NULL CHECK (cancel_rate BETWEEN 0 AND 100),
    total_revenue         NUMERIC(14, 2) NOT NULL CHECK (total_revenue >= 0),
    performance_category  TEXT NOT NULL CHECK (performance_category IN ('promote', 'intervention', 'at_risk'))
);
CREATE INDEX IF NOT EXISTS property_performance_city ON {{schema}}.property_performance (city, views DESC);

-- Confirmation-rate lift (percentage points) of listings with an amenity over those without.
CREATE TABLE IF NOT EXISTS {{schema}}.amenity_lift (
    city               TEXT NOT NULL,
    property_type      TEXT NOT NULL,
    amenity_name       TEXT NOT NULL,
    listings_with      INTEGER NOT NULL CHECK (listings_with >= 0),
    listings_without   INTEGER NOT NULL CHECK (listings_without >= 0),
    rate_with          NUMERIC(6, 2) NOT NULL,
    rate_without       NUMERIC(6, 2) NOT NULL,
    confirmation_lift  NUMERIC(6, 2) NOT NULL,
    impact_tier        TEXT NOT NULL CHECK (impact_tier IN ('must_have', 'differentiator', 'low_impact')),
    PRIMARY KEY (city, property_type, amenity_name)
);

-- Top amenities per city for the city's main property type (rank 1 = highest lift).
CREATE TABLE IF NOT EXISTS {{schema}}.amenity_city_top (
    city               TEXT NOT NULL,
    property_type      TEXT NOT NULL,
    amenity_name       TEXT NOT NULL,
    confirmation_lift  NUMERIC(6, 2) NOT NULL,
    rank               INTEGER NOT NULL CHECK (rank >= 1),
    PRIMARY KEY (city, rank)
);

-- Weekly funnel per city and device.
CREATE TABLE IF NOT EXISTS {{schema}}.device_funnel (
    city               TEXT NOT NULL,
    week_start         DATE NOT NULL,
    device             TEXT NOT NULL CHECK (device IN ('desktop', 'mobile', 'tablet')),
    viewers            INTEGER NOT NULL CHECK (viewers >= 0),
    initiated_bookers  INTEGER NOT NULL,
    completers         INTEGER NOT NULL,
    completion_rate    NUMERIC(6, 2) NOT NULL CHECK (completion_rate BETWEEN 0 AND 100),
    PRIMARY KEY (city, week_start, device),
    CHECK (viewers >= initiated_bookers AND initiated_bookers >= completers AND completers >= 0)
);
CREATE INDEX IF NOT EXISTS device_funnel_week ON {{schema}}.device_funnel (week_start);

CREATE TABLE IF NOT EXISTS {{schema}}.device_diagnosis (
    city             TEXT PRIMARY KEY,
    desktop_rate     NUMERIC(6, 2) NOT NULL,
    mobile_rate      NUMERIC(6, 2) NOT NULL,
    tablet_rate      NUMERIC(6, 2) NOT NULL,
    device_gap_pct   NUMERIC(6, 2) NOT NULL,
    diagnosis        TEXT NOT NULL CHECK (diagnosis IN ('likely_ux_issue', 'monitor', 'healthy')),
    mobile_trend     TEXT NOT NULL CHECK (mobile_trend IN ('improving', 'stable', 'declining'))
);
