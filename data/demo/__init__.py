"""Loading the generated demo data with COPY, and keeping it current.

`load_demo_data` fills every demo table in one transaction (all or nothing) and records what
it loaded in app_meta. `refresh_demo_data` runs at each start: it moves the synced tables'
dates so "last month" always has data, and adds orders from the last load up to now, so
there are always orders timestamped today.
"""
from __future__ import annotations

import io
import logging
from decimal import Decimal
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text
from tqdm import tqdm

from ..database import Database
from ..tables import Tables, quote
from . import fashion, marketplace, retail

log = logging.getLogger(__name__)

CHUNK_ROWS = 200_000
_FAR = 100_000  # days; moving dates out of the way first avoids primary-key collisions


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# -- COPY ---------------------------------------------------------------------------------

def _copy_frame(conn: Connection, table: str, frame: pd.DataFrame, bar: tqdm | None) -> None:
    raw = conn.connection.driver_connection
    columns = ", ".join(quote(c) for c in frame.columns)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
            for start in range(0, len(frame), CHUNK_ROWS):
                chunk = frame.iloc[start:start + CHUNK_ROWS]
                buffer = io.StringIO()
                chunk.to_csv(buffer, header=False, index=False, na_rep="\\N")
                copy.write(buffer.getvalue())
                if bar is not None:
                    bar.update(len(chunk))


def _copy_binary(conn: Connection, table: str, columns: list[str], types: list[str], rows, total: int,
                 bar: tqdm | None) -> None:
    """Binary COPY, for rows holding vectors and arrays (pgvector adapts NumPy arrays)."""
    from pgvector.psycopg import register_vector
    raw = conn.connection.driver_connection
    register_vector(raw)
    names = ", ".join(quote(c) for c in columns)
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.set_types(types)
            for i, row in enumerate(rows, start=1):
                copy.write_row(row)
                if bar is not None and i % 2000 == 0:
                    bar.update(2000)
    if bar is not None:
        bar.update(total % 2000)


# -- app_meta -----------------------------------------------------------------------------

def read_meta(db: Database, tables: Tables) -> dict[str, str]:
    return {r["key"]: r["value"] for r in db.rows("read_app_meta", f"SELECT key, value FROM {tables.app_meta}")}


def write_meta(db: Database, tables: Tables, values: dict[str, object]) -> None:
    with db.transaction("write_app_meta") as conn:
        _write_meta(conn, tables, values)


def _write_meta(conn: Connection, tables: Tables, values: dict[str, object]) -> None:
    for key, value in values.items():
        conn.execute(text(f"INSERT INTO {tables.app_meta} (key, value, updated_at) VALUES (:k, :v, now()) "
                          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()"),
                     {"k": key, "v": str(value)})


# -- loading ------------------------------------------------------------------------------

def _retail_frames(now: datetime, scale: float) -> dict[str, pd.DataFrame]:
    catalog = retail.products()
    window = retail.orders_window(now - timedelta(days=90), now, first_order_id=1, existing_customers=0,
                                  catalog=catalog, seed=11, rate_per_day=retail.ORDERS_PER_DAY * scale)
    return {"products": catalog, **window}


def _with_triggers_disabled(conn: Connection, tables: Tables, names: tuple[str, ...], enable: bool) -> None:
    # Bulk loads bypass the per-row audit/history triggers; their history is generated instead.
    verb = "ENABLE" if enable else "DISABLE"
    for name in names:
        conn.exec_driver_sql(f"ALTER TABLE {getattr(tables, name)} {verb} TRIGGER USER")


def _load_retail(conn: Connection, tables: Tables, frames: dict[str, pd.DataFrame], bar) -> None:
    names = ("customers", "orders", "order_items", "order_status_history")
    _with_triggers_disabled(conn, tables, names, enable=False)
    for name in ("products", *names):
        if name in frames and len(frames[name]):
            _copy_frame(conn, getattr(tables, name), frames[name], bar)
    _with_triggers_disabled(conn, tables, names, enable=True)
    # Sequences continue after the loaded rows (names travel as bound parameters, cast to regclass).
    conn.execute(text(f"SELECT setval(pg_get_serial_sequence(:orders, 'order_id'), "
                      f"(SELECT coalesce(max(order_id), 0) + 1 FROM {tables.orders}), false)"),
                 {"orders": tables.orders})
    conn.execute(text(f"SELECT setval(CAST(:sequence AS regclass), (SELECT coalesce(max(substr(customer_id, 2)::int), 0) + 1 "
                      f"FROM {tables.customers} WHERE customer_id ~ '^C[0-9]+$'), false)"),
                 {"sequence": f"{tables.schema('retail')}.customer_number"})


def load_demo_data(db: Database, tables: Tables, *, scale: float = 1.0, now: datetime | None = None,
                   progress: bool = True, meta: dict[str, object] | None = None) -> None:
    """Fill the (empty) demo tables in one transaction."""
    now = now or _utcnow()
    today = now.date()
    log.info("generating demo data scale=%g", scale)
    market = marketplace.generate(today)
    shop = _retail_frames(now, scale)
    catalog = fashion.generate(today=today)
    row_count = (sum(len(f) for f in market.values()) + sum(len(f) for f in shop.values())
                 + len(catalog["productsdb"]) + len(catalog["usersdb"]) + 2 * len(catalog["user_vectors"])
                 + len(catalog["product_vectors"]))
    bar = tqdm(total=row_count, unit=" rows", unit_scale=True, desc="Loading demo data",
               disable=not progress, mininterval=0.5)
    with db.transaction("load_demo_data") as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")   # a large scale loads millions of rows
        for name, frame in market.items():
            _copy_frame(conn, getattr(tables, name), frame, bar)
        _load_retail(conn, tables, shop, bar)
        _copy_frame(conn, tables.productsdb, catalog["productsdb"], bar)
        _copy_frame(conn, tables.usersdb, catalog["usersdb"], bar)
        products = catalog["productsdb"]["product_id"].to_numpy()
        _copy_binary(conn, tables.product_image_embeddingsdb, ["product_id", "embedding_model", "image_embedding"],
                     ["int4", "text", "vector"],
                     ((int(p), fashion.EMBEDDING_MODEL, v) for p, v in zip(products, catalog["product_vectors"])),
                     len(products), bar)
        _copy_style_features(conn, tables, catalog["user_style_featuresdb"], catalog["user_vectors"], bar)
        _write_meta(conn, tables, {
            "demo_loaded_at": now.isoformat(), "demo_scale": scale,
            "demo_funnel_anchor": today.isoformat(),
            "demo_device_anchor": marketplace.last_monday(today).isoformat(),
            "demo_orders_until": now.isoformat(), **(meta or {})})
    bar.close()
    _vacuum(db, tables)
    log.info("demo data loaded rows=%d", row_count)


def _vacuum(db: Database, tables: Tables) -> None:
    """After a bulk load: set hint bits and the visibility map now, not on the first user's reads."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SET statement_timeout = 0")
        for domain in ("marketplace", "retail", "fashion"):
            for name in tables.tables_of(domain):
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {getattr(tables, name)}")


def _copy_style_features(conn: Connection, tables: Tables, features: pd.DataFrame, styles: np.ndarray,
                         bar) -> None:
    money = ("min_price", "max_price", "avg_price")
    rows = ((int(r.user_id), list(r.preferred_categories), list(r.preferred_colors),
             *(Decimal(str(getattr(r, m))) for m in money), int(r.num_interactions), vector)
            for r, vector in zip(features.itertuples(), styles))
    _copy_binary(conn, tables.user_style_featuresdb,
                 ["user_id", "preferred_categories", "preferred_colors", *money, "num_interactions",
                  "style_embedding"],
                 ["int4", "text[]", "text[]", "numeric", "numeric", "numeric", "int4", "vector"],
                 rows, len(features), bar)


# -- keeping the demo current -------------------------------------------------------------

def _shift_dates(conn: Connection, table: str, column: str, days: int) -> None:
    if days <= 0:
        return
    column = quote(column)
    conn.exec_driver_sql(f"UPDATE {table} SET {column} = {column} + {_FAR:d}")
    conn.exec_driver_sql(f"UPDATE {table} SET {column} = {column} - {_FAR - days:d}")


def refresh_demo_data(db: Database, tables: Tables, *, now: datetime | None = None) -> dict[str, int]:
    """Move synced-table dates up to today and add orders up to now; returns what changed."""
    now = now or _utcnow()
    meta = read_meta(db, tables)
    if "demo_loaded_at" not in meta:
        return {}
    today = now.date()
    funnel_days = (today - date.fromisoformat(meta["demo_funnel_anchor"])).days
    device_days = (marketplace.last_monday(today) - date.fromisoformat(meta["demo_device_anchor"])).days
    since = datetime.fromisoformat(meta["demo_orders_until"])
    scale = float(meta.get("demo_scale", 1))
    with db.transaction("refresh_demo_data") as conn:
        conn.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        _shift_dates(conn, tables.city_funnel, "event_date", funnel_days)
        _shift_dates(conn, tables.device_funnel, "week_start", device_days)
        added = _top_up_orders(conn, tables, since, now, scale)
        _write_meta(conn, tables, {"demo_funnel_anchor": today.isoformat(),
                                   "demo_device_anchor": marketplace.last_monday(today).isoformat(),
                                   "demo_orders_until": now.isoformat()})
    changes = {"funnel_days": max(funnel_days, 0), "device_days": max(device_days, 0), "orders_added": added}
    log.info("demo data refreshed %s", " ".join(f"{k}={v}" for k, v in changes.items()))
    return changes


def _top_up_orders(conn: Connection, tables: Tables, since: datetime, now: datetime, scale: float) -> int:
    if now <= since:
        return 0
    existing_customers = conn.execute(text(
        f"SELECT coalesce(max(substr(customer_id, 2)::int), 0) FROM {tables.customers} "
        "WHERE customer_id ~ '^C[0-9]+$'")).scalar()
    next_order = conn.execute(text(f"SELECT coalesce(max(order_id), 0) + 1 FROM {tables.orders}")).scalar()
    catalog = pd.DataFrame(conn.execute(text(
        f"SELECT product_id, unit_price::float8 AS unit_price FROM {tables.products} "
        "WHERE active ORDER BY product_id")).mappings().all())
    frames = retail.orders_window(since, now, first_order_id=next_order, existing_customers=existing_customers,
                                  catalog=catalog, seed=int(since.timestamp()),
                                  rate_per_day=retail.ORDERS_PER_DAY * scale)
    if not len(frames["orders"]):
        return 0
    _load_retail(conn, tables, frames, None)
    return len(frames["orders"])
