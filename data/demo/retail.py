"""Retail360 orders: customers, products, orders with 1-5 items, and each order's status history.

Orders are generated for a time window at a steady rate with a daily rhythm (busy at lunch
and in the evening), so the initial load covers the last 90 days and a later top-up fills
the gap up to now: there are always orders timestamped today. Vectorised with NumPy so that
a million orders take seconds.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

ORDERS_PER_DAY = 5000 / 90
STATUS_FLOW = ("pending", "confirmed", "processing", "shipped", "delivered")
ACTOR = "demo data"
_FULFILMENT_US = 10 * 86400 * 10**6

_FIRST = ("Maria", "James", "Aisha", "Wei", "Sofia", "Liam", "Priya", "Noah", "Elena", "Omar", "Yuki",
          "Lucas", "Fatima", "Mateo", "Chloe", "Ivan", "Zara", "Daniel", "Amara", "Kenji", "Lea", "Hugo",
          "Nadia", "Ethan", "Ines", "Ravi", "Mia", "Tomas", "Leila", "Jonas")
_LAST = ("Garcia", "Smith", "Khan", "Chen", "Rossi", "Murphy", "Patel", "Johnson", "Novak", "Haddad",
         "Tanaka", "Silva", "Ahmed", "Lopez", "Martin", "Petrov", "Okafor", "Schmidt", "Dubois", "Sato",
         "Nguyen", "Costa", "Jensen", "Moreau", "Kowalski", "Ibrahim", "Fischer", "Santos", "Berg", "Mehta")
_STREETS = ("Oak", "Maple", "Harbour", "Station", "Mill", "Park", "Church", "High", "Lake", "River", "Cedar",
            "Market", "Bridge", "King", "Queen", "Garden")
_PLACES = (("Seattle", "United States"), ("Austin", "United States"), ("Toronto", "Canada"),
           ("London", "United Kingdom"), ("Dublin", "Ireland"), ("Berlin", "Germany"), ("Paris", "France"),
           ("Madrid", "Spain"), ("Amsterdam", "Netherlands"), ("Sydney", "Australia"), ("Singapore", "Singapore"),
           ("Tokyo", "Japan"), ("Mumbai", "India"), ("Sao Paulo", "Brazil"), ("Stockholm", "Sweden"))

_CATALOG = {  # category -> (product names, price range)
    "Electronics": (("Wireless Earbuds", "USB-C Charger", "Bluetooth Speaker", "Smart Watch", "Laptop Stand",
                     "Webcam HD", "Power Bank", "Mechanical Keyboard", "Gaming Mouse", "Noise-Cancelling Headphones"),
                    (15, 320)),
    "Home": (("Ceramic Mug", "Throw Blanket", "Desk Lamp", "Scented Candle", "Storage Basket", "Wall Clock",
              "Cotton Towels", "Picture Frame", "Table Runner", "Plant Pot"), (8, 90)),
    "Apparel": (("Cotton T-Shirt", "Denim Jacket", "Running Shorts", "Wool Scarf", "Rain Coat", "Hoodie",
                 "Chino Trousers", "Linen Shirt", "Knit Beanie", "Leather Belt"), (12, 160)),
    "Beauty": (("Face Serum", "Lip Balm", "Hand Cream", "Shampoo", "Sunscreen SPF50", "Body Lotion",
                "Hair Oil", "Face Mask", "Perfume", "Nail Polish"), (5, 85)),
    "Sports": (("Yoga Mat", "Water Bottle", "Resistance Bands", "Tennis Balls", "Cycling Gloves",
                "Jump Rope", "Foam Roller", "Gym Bag", "Swim Goggles", "Dumbbell Set"), (6, 140)),
    "Grocery": (("Ground Coffee", "Green Tea", "Olive Oil", "Dark Chocolate", "Granola", "Honey Jar",
                 "Pasta Pack", "Spice Set", "Almond Butter", "Sparkling Water"), (3, 35)),
    "Books": (("Cookbook", "Travel Guide", "Mystery Novel", "Science Atlas", "Poetry Collection",
               "Business Handbook", "Kids Picture Book", "History of Art", "Language Course", "Sketchbook"),
              (7, 55)),
    "Toys": (("Building Blocks", "Puzzle 1000pc", "Plush Bear", "Board Game", "RC Car", "Kite",
              "Craft Kit", "Toy Train", "Card Game", "Science Kit"), (6, 95)),
}


def products(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for category, (names, (low, high)) in _CATALOG.items():
        for name in names:
            for variant in ("Standard", "Premium", "Mini"):
                factor = {"Standard": 1.0, "Premium": 1.6, "Mini": 0.6}[variant]
                price = round(float(rng.uniform(low, high)) * factor, 2)
                rows.append((category, f"{name} {variant}" if variant != "Standard" else name, max(price, 1.0)))
    out = pd.DataFrame(rows, columns=["category", "name", "unit_price"])
    out.insert(0, "product_id", [f"P{i:04d}" for i in range(1, len(out) + 1)])
    out.insert(1, "sku", [f"{c[:3].upper()}-{i:05d}" for i, c in enumerate(out["category"], start=10001)])
    out["active"] = True
    return out


def _order_times(rng: np.random.Generator, start: datetime, end: datetime, n: int) -> np.ndarray:
    """n timestamps in [start, end) following a daily rhythm; sorted."""
    hour_weight = np.array([.2, .1, .1, .1, .1, .2, .4, .7, .9, 1, 1.1, 1.4, 1.5, 1.3, 1, .9, .9, 1,
                            1.2, 1.4, 1.5, 1.3, .8, .4])
    span = (end - start).total_seconds()
    picked = np.empty(0, dtype=float)
    while len(picked) < n:
        offsets = rng.uniform(0, span, max(n * 3, 64))
        hours = ((start.hour * 3600 + start.minute * 60 + start.second + offsets) // 3600 % 24).astype(int)
        keep = rng.uniform(0, hour_weight.max(), len(offsets)) < hour_weight[hours]
        picked = np.concatenate([picked, offsets[keep]])
    offsets = np.sort(picked[:n])
    return np.datetime64(start.replace(tzinfo=None), "us") + (offsets * 1e6).astype("timedelta64[us]")


def _ensure_some_today(created: np.ndarray, end: datetime, rng: np.random.Generator, minimum: int = 8) -> np.ndarray:
    """Just after midnight the steady rate gives no order yet today; move the latest few into today."""
    midnight = np.datetime64(end.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None), "us")
    stop = np.datetime64(end.replace(tzinfo=None), "us")
    missing = min(minimum, len(created)) - int((created >= midnight).sum())
    if missing <= 0 or stop <= midnight:
        return created
    span = (stop - midnight).astype(np.int64)
    moved = midnight + np.sort(rng.integers(0, span, missing)).astype("timedelta64[us]")
    return np.sort(np.concatenate([created[: len(created) - missing], moved]))


def _status_by_age(rng: np.random.Generator, age_days: np.ndarray) -> np.ndarray:
    u = rng.random(len(age_days))
    status = np.select(
        [age_days < 0.1, age_days < 1, age_days < 3, age_days < 10],
        [np.where(u < 0.7, "pending", "confirmed"),
         np.where(u < 0.3, "pending", np.where(u < 0.7, "confirmed", "processing")),
         np.where(u < 0.1, "confirmed", np.where(u < 0.5, "processing", "shipped")),
         np.where(u < 0.5, "shipped", "delivered")],
        default=np.where(u < 0.95, "delivered", "returned"))
    cancel = (rng.random(len(age_days)) < 0.05) & np.isin(status, ["pending", "confirmed", "processing"]) \
        | (rng.random(len(age_days)) < 0.04) & (age_days >= 1)
    return np.where(cancel, "cancelled", status)


def _history(order_ids: np.ndarray, created: np.ndarray, status: np.ndarray, now: datetime,
             rng: np.random.Generator) -> pd.DataFrame:
    """The path each order took to its current status, with times between creation and now."""
    paths = {s: STATUS_FLOW[: STATUS_FLOW.index(s) + 1] for s in STATUS_FLOW}
    paths["cancelled"] = ("pending", "cancelled")
    paths["returned"] = STATUS_FLOW + ("returned",)
    now64 = np.datetime64(now.replace(tzinfo=None), "us")
    frames = []
    for final, path in paths.items():
        mask = status == final
        if not mask.any():
            continue
        ids, born = order_ids[mask], created[mask]
        # Fulfilment takes days, not months: changes happen within ten days of the order (or by now).
        room = np.minimum((now64 - born).astype("timedelta64[us]").astype(np.int64), _FULFILMENT_US)
        fractions = np.sort(rng.uniform(0, 1, (len(ids), len(path) - 1)), axis=1)
        times = [born] + [born + (room * fractions[:, k] * 0.9).astype("timedelta64[us]")
                          for k in range(len(path) - 1)]
        for step, to_status in enumerate(path):
            frames.append(pd.DataFrame({"order_id": ids, "from_status": path[step - 1] if step else None,
                                        "to_status": to_status, "changed_at": times[step]}))
    history = pd.concat(frames, ignore_index=True).sort_values(["order_id", "changed_at"], kind="stable")
    history["changed_by"] = ACTOR
    return history.reset_index(drop=True)


def customer_ids(numbers: np.ndarray) -> list[str]:
    """C0000001, ... (plain formatting: NumPy's char.zfill fails on an empty array)."""
    return [f"C{int(n):07d}" for n in numbers]


def _customers(rng: np.random.Generator, first_index: int, created: np.ndarray) -> pd.DataFrame:
    n = len(created)
    index = np.arange(first_index, first_index + n)
    first = rng.choice(_FIRST, n)
    last = rng.choice(_LAST, n)
    place = rng.integers(0, len(_PLACES), n)
    street_no = rng.integers(1, 400, n)
    street = rng.choice(_STREETS, n)
    cities = np.array([p[0] for p in _PLACES])[place]
    countries = np.array([p[1] for p in _PLACES])[place]
    return pd.DataFrame({
        "customer_id": customer_ids(index),
        "name": np.char.add(np.char.add(first.astype(str), " "), last.astype(str)),
        "email": [f"{f.lower()}.{l.lower()}.{i}@example.com" for f, l, i in zip(first, last, index)],
        "address": [f"{no} {st} Street" for no, st in zip(street_no, street)],
        "city": cities, "country": countries, "created_at": created,
    })


def orders_window(start: datetime, end: datetime, *, first_order_id: int, existing_customers: int,
                  catalog: pd.DataFrame, seed: int, rate_per_day: float = ORDERS_PER_DAY) -> dict[str, pd.DataFrame]:
    """Customers who first appear, orders, items and status history for [start, end).

    Customers are numbered from 1 in the order they first buy; `existing_customers` already exist.
    """
    rng = np.random.default_rng(seed)
    n = int(round((end - start).total_seconds() / 86400 * rate_per_day))
    if n <= 0:
        return {k: pd.DataFrame() for k in ("customers", "orders", "order_items", "order_status_history")}
    created = _ensure_some_today(_order_times(rng, start, end, n), end, rng)
    # About 30% of orders come from new customers (all of the first 150 when the shop is empty).
    new = rng.random(n) < 0.3
    if existing_customers == 0:
        new[: min(n, 150)] = True
    known_after = existing_customers + np.cumsum(new)
    known_before = known_after - new
    returning = 1 + np.floor(rng.random(n) ** 1.6 * np.maximum(known_before, 1)).astype(np.int64)
    customer_number = np.where(new, known_after, returning)
    customers = _customers(rng, existing_customers + 1, created[new])
    customer_id = customer_ids(customer_number)

    items_per_order = rng.choice([1, 2, 3, 4, 5], n, p=[0.35, 0.28, 0.18, 0.12, 0.07])
    order_of_item = np.repeat(np.arange(n), items_per_order)
    line_no = np.arange(len(order_of_item)) - np.repeat(np.cumsum(items_per_order) - items_per_order,
                                                        items_per_order) + 1
    # The first line of an order follows product popularity; further lines step through the catalogue
    # with a stride coprime to its size, so no product appears twice in one order.
    popularity = 1 / np.arange(1, len(catalog) + 1) ** 0.8
    first_product = rng.choice(len(catalog), n, p=popularity / popularity.sum())
    strides = np.array([s for s in range(7, 60) if np.gcd(s, len(catalog)) == 1])
    stride = rng.choice(strides, n)
    product_pick = (first_product[order_of_item] + (line_no - 1) * stride[order_of_item]) % len(catalog)
    quantity = rng.choice([1, 2, 3, 4], len(order_of_item), p=[0.7, 0.18, 0.08, 0.04])
    unit_price = catalog["unit_price"].to_numpy()[product_pick]
    order_ids = np.arange(first_order_id, first_order_id + n)
    items = pd.DataFrame({"order_id": order_ids[order_of_item], "line_no": line_no,
                          "product_id": catalog["product_id"].to_numpy()[product_pick],
                          "quantity": quantity, "unit_price": unit_price})

    subtotal = np.round(np.bincount(order_of_item, weights=quantity * unit_price, minlength=n), 2)
    count = np.bincount(order_of_item, weights=quantity, minlength=n).astype(int)
    discount = np.where(rng.random(n) < 0.15, np.round(subtotal * rng.uniform(0.05, 0.2, n), 2), 0.0)
    shipping = np.where(subtotal >= 100, 0.0, rng.choice([4.99, 9.99], n))
    now = end
    age_days = (np.datetime64(now.replace(tzinfo=None), "us") - created) / np.timedelta64(1, "D")
    status = _status_by_age(rng, age_days)
    history = _history(order_ids, created, status, now, rng)
    last_change = history.groupby("order_id")["changed_at"].max().reindex(order_ids).to_numpy()
    changes = history.groupby("order_id").size().reindex(order_ids).to_numpy() - 1

    street = rng.choice(_STREETS, n).astype(str)
    addresses = np.char.add(np.char.add(rng.integers(1, 400, n).astype(str), " "), np.char.add(street, " Street"))
    orders = pd.DataFrame({
        "order_id": order_ids, "customer_id": customer_id, "status": status,
        "items_subtotal": subtotal, "discount": discount, "shipping_fee": shipping, "item_count": count,
        "shipping_address": addresses,
        "notes": "", "created_at": created, "modified_at": last_change, "modified_by": ACTOR,
        "version": 1 + changes,
    })
    return {"customers": customers, "orders": orders, "order_items": items, "order_status_history": history}
