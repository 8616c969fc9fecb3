"""Catalog speed on the 44,000 demo products (the data layer, as each session calls it).

Filtered page (24 rows, a facet or two, a price band, sorted), facet counts for the same filters,
and similar products through the HNSW index beside an exact scan (their ratio). Targets: filtered
page p95 < 50 ms.

    python -m tests.bench.catalog [--rounds 200]
"""
from __future__ import annotations

import argparse
import random
import time

from data.backend import create_vector_index
from data.catalog import Catalog, ProductFilter
from tests.bench.common import demo_backend, describe, percentiles

FILTERS = [
    ProductFilter(choices=(("gender", ("Women",)),), price_max=60),
    ProductFilter(choices=(("master_category", ("Footwear",)), ("base_color", ("Black", "White")))),
    ProductFilter(choices=(("article_type", ("Tshirts", "Shirts")), ("season", ("Summer",))), price_min=10,
                  price_max=40),
    ProductFilter(search="printed"),
    ProductFilter(),
]
SORTS = ["name", "price_low", "price_high", "newest"]


def timed(samples: list, call) -> None:
    started = time.perf_counter()
    call()
    samples.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    with demo_backend() as backend:
        started = time.perf_counter()
        create_vector_index(backend.db, backend.tables)
        print(f"HNSW index over 44,000 x 512: built in {time.perf_counter() - started:.1f} s")
        catalog = Catalog(backend.db, backend.tables)
        ids = [int(i) for i in backend.db.frame("ids", f"SELECT product_id FROM {backend.tables.productsdb}")
               ["product_id"]]
        pages, facets, similar_index, similar_exact = [], [], [], []
        for _ in range(10):                                         # warm the server's caches
            catalog.page(rng.choice(FILTERS), rng.randint(1, 20), 24, rng.choice(SORTS))
        for _ in range(args.rounds):
            chosen = rng.choice(FILTERS)
            timed(pages, lambda: catalog.page(chosen, rng.randint(1, 20), 24, rng.choice(SORTS)))
            timed(facets, lambda: catalog.facet_counts(chosen))
            product = rng.choice(ids)
            timed(similar_index, lambda: catalog.similar(product, 12))
            timed(similar_exact, lambda: catalog.similar(product, 12, exact=True))
    print(describe("filtered page (24 rows, sorted)", pages))
    print(describe("facet counts (7 facets, one statement)", facets))
    print(describe("similar products, HNSW index", similar_index))
    print(describe("similar products, exact scan", similar_exact))
    ratio = percentiles(similar_exact)["p95"] / percentiles(similar_index)["p95"]
    print(f"similar products p95: exact scan / HNSW index = {ratio:.1f}x")


if __name__ == "__main__":
    main()
