-- Fashion catalog. On Lakebase these are synced tables (read-only to the app); the embedded
-- default creates them here with demo data. Indexes cover the columns the catalog filters on.
CREATE SCHEMA IF NOT EXISTS {{schema}};
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS {{schema}}.productsdb (
    product_id            INTEGER PRIMARY KEY,
    gender                TEXT NOT NULL,
    master_category       TEXT NOT NULL,
    sub_category          TEXT NOT NULL,
    article_type          TEXT NOT NULL,
    base_color            TEXT NOT NULL,
    season                TEXT NOT NULL,
    year                  INTEGER NOT NULL,
    usage                 TEXT NOT NULL,
    product_display_name  TEXT NOT NULL,
    price                 NUMERIC(10, 2) NOT NULL CHECK (price >= 0)
);
CREATE INDEX IF NOT EXISTS productsdb_master_category ON {{schema}}.productsdb (master_category);
CREATE INDEX IF NOT EXISTS productsdb_price ON {{schema}}.productsdb (price);
CREATE INDEX IF NOT EXISTS productsdb_gender ON {{schema}}.productsdb (gender);
CREATE INDEX IF NOT EXISTS productsdb_base_color ON {{schema}}.productsdb (base_color);
CREATE INDEX IF NOT EXISTS productsdb_article_type ON {{schema}}.productsdb (article_type);

CREATE TABLE IF NOT EXISTS {{schema}}.usersdb (
    user_id      INTEGER PRIMARY KEY,
    user_name    TEXT NOT NULL,
    gender       TEXT NOT NULL,
    age_band     TEXT NOT NULL,
    region       TEXT NOT NULL,
    signup_date  DATE NOT NULL
);

CREATE TABLE IF NOT EXISTS {{schema}}.product_image_embeddingsdb (
    product_id       INTEGER PRIMARY KEY,
    embedding_model  TEXT NOT NULL,
    image_embedding  vector(512) NOT NULL
);

CREATE TABLE IF NOT EXISTS {{schema}}.user_style_featuresdb (
    user_id               INTEGER PRIMARY KEY,
    preferred_categories  TEXT[] NOT NULL,
    preferred_colors      TEXT[] NOT NULL,
    min_price             NUMERIC(10, 2) NOT NULL,
    max_price             NUMERIC(10, 2) NOT NULL,
    avg_price             NUMERIC(10, 2) NOT NULL,
    num_interactions      INTEGER NOT NULL,
    style_embedding       vector(512) NOT NULL,
    CHECK (min_price <= avg_price AND avg_price <= max_price)
);
