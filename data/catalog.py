"""The fashion catalog (synced tables, read-only): faceted browsing, similar products by image
embedding, and a user's style with the products nearest to it.

Facet counts follow the other filters: each facet is counted with every filter but its own, so
a person sees how many products each further choice would leave. Similar products are the
nearest image embeddings by cosine distance (pgvector, HNSW index); with a restriction (same
gender or category) the index is scanned iteratively so the restriction does not starve the
result, and `exact=True` turns index scans off for a brute-force ranking.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import text

from .cache import Caches, cached
from .database import Database, to_frame
from .errors import AppError, Category, ValidationError
from .paging import CHOICE, NUMBER, TEXT, WHOLE, Column, Listing, Page, PageQuery, like_pattern, typed_text
from .tables import Tables, quote

FACETS = {"gender": "Gender", "master_category": "Category", "sub_category": "Sub-category",
          "article_type": "Article type", "base_color": "Colour", "season": "Season", "usage": "Usage"}
SORTS = {"name": (("product_display_name", False),), "price_low": (("price", False),),
         "price_high": (("price", True),), "newest": (("year", True),)}
SIMILAR_SCOPES = ("any", "gender", "category")
IMAGE_COLUMNS = ("image_url", "image_link", "link", "image")
HNSW_EF_SEARCH = 200


@dataclass(frozen=True)
class ProductFilter:
    """What a person chose: values per facet, a price range (either end open) and a name search."""

    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    search: str = ""

    def chosen(self) -> dict[str, tuple[str, ...]]:
        return {facet: values for facet, values in self.choices if values}

    def validate(self) -> None:
        unknown = [facet for facet, _ in self.choices if facet not in FACETS]
        if unknown:
            raise ValidationError(f"There is no facet called {', '.join(unknown)}.")
        for bound in (self.price_min, self.price_max):
            if bound is not None and bound < 0:
                raise ValidationError("Prices cannot be negative.")
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValidationError(f"The lowest price ({self.price_min:,.2f}) is above the highest "
                                  f"({self.price_max:,.2f}); swap them to see products in between.")
        typed_text(self.search, "product search")


@dataclass
class UserStyle:
    user_id: int
    user_name: str
    gender: str
    age_band: str
    region: str
    preferred_categories: list[str]
    preferred_colors: list[str]
    min_price: float
    max_price: float
    avg_price: float
    num_interactions: int


class Catalog:
    """Reads of the fashion tables; one per process, shared by every session."""

    def __init__(self, db: Database, tables: Tables):
        self.db, self.t = db, tables
        self._caches = Caches()
        self.products = Listing(
            name="catalog", source=tables.productsdb, key="product_id",
            columns={"product_id": Column("product_id", WHOLE),
                     "product_display_name": Column("product_display_name", TEXT),
                     **{facet: Column(facet, CHOICE) for facet in FACETS},
                     "year": Column("year", WHOLE), "price": Column("price", NUMBER)},
            default_sort=SORTS["name"])

    def clear(self) -> None:
        self._caches.clear()

    # -- browsing -------------------------------------------------------------------------

    def _where(self, chosen: ProductFilter, *, skip: str | None = None) -> tuple[list[str], dict]:
        """Conditions for the filter (all bound parameters), optionally without one facet's."""
        clauses, params = [], {}
        for i, (facet, values) in enumerate(sorted(chosen.chosen().items())):
            if facet != skip:
                clauses.append(f"{facet} = ANY(:facet{i})")
                params[f"facet{i}"] = list(values)
        if chosen.price_min is not None:
            clauses.append("price >= :price_min")
            params["price_min"] = chosen.price_min
        if chosen.price_max is not None:
            clauses.append("price <= :price_max")
            params["price_max"] = chosen.price_max
        if chosen.search.strip():
            clauses.append(r"product_display_name ILIKE :search ESCAPE '\'")
            params["search"] = like_pattern(chosen.search.strip())
        return clauses, params

    def page(self, chosen: ProductFilter, page: int = 1, size: int = 24, sort: str = "name") -> Page:
        """One page of the products matching the filter, sorted in SQL."""
        chosen.validate()
        if sort not in SORTS:
            raise ValidationError(f"Sort by one of: {', '.join(SORTS)}.")
        clauses, params = self._where(chosen)
        image = self.image_column()
        listing = self.products
        if image:
            listing = Listing(listing.name, listing.source, {**listing.columns, "image_url": Column(
                quote(image), TEXT, sortable=False)}, listing.key, listing.default_sort)
        return self._guard(lambda: listing.fetch(
            self.db, PageQuery(page=page, size=size, sort=SORTS[sort]), where=" AND ".join(clauses),
            params=params))

    def facet_counts(self, chosen: ProductFilter) -> dict[str, pd.DataFrame]:
        """Per facet, its values with how many products each would leave given the other filters."""
        chosen.validate()
        parts, params = [], {}
        for n, facet in enumerate(FACETS):
            clauses, bound = self._where(chosen, skip=facet)
            where = _suffix_params(" AND ".join(clauses), n)
            params.update({f"{key}_{n}": value for key, value in bound.items()})
            parts.append(f"SELECT '{facet}' AS facet, {facet} AS value, count(*) AS products "
                         f"FROM {self.t.productsdb} {'WHERE ' + where if where else ''} GROUP BY {facet}")
        frame = self._guard(lambda: self.db.frame("catalog_facets", " UNION ALL ".join(parts), params))
        counts = {}
        for facet in FACETS:
            rows = frame[frame["facet"] == facet][["value", "products"]]
            counts[facet] = rows.sort_values(["products", "value"], ascending=[False, True]).reset_index(drop=True)
        return counts

    @cached("catalog_price_range", ttl=300, maxsize=4)
    def price_range(self) -> tuple[float, float]:
        row = self._guard(lambda: self.db.rows("catalog_price_range",
                                               f"SELECT min(price) AS low, max(price) AS high FROM {self.t.productsdb}"))[0]
        return float(row["low"] or 0), float(row["high"] or 0)

    @cached("catalog_image_column", ttl=300, maxsize=4)
    def image_column(self) -> str | None:
        """The products table's image URL column, when the synced table has one."""
        names = self.db.rows("catalog_columns", """
            SELECT column_name FROM information_schema.columns
            WHERE table_schema = :schema AND table_name = :table""",
                             {"schema": self.t.schemas["fashion"], "table": self.t.name("productsdb")})
        present = {r["column_name"] for r in names}
        return next((c for c in IMAGE_COLUMNS if c in present), None)

    def product(self, product_id: int) -> dict | None:
        image = self.image_column()
        extra = f", {quote(image)} AS image_url" if image else ""
        rows = self._guard(lambda: self.db.rows("catalog_product", f"""
            SELECT product_id, product_display_name, {', '.join(FACETS)}, year, price{extra}
            FROM {self.t.productsdb} WHERE product_id = :id""", {"id": int(product_id)}))
        if not rows:
            return None
        row = rows[0]
        row["price"] = float(row["price"])
        return row

    # -- similar products -----------------------------------------------------------------

    def similar(self, product_id: int, k: int = 12, scope: str = "any", *, exact: bool = False) -> pd.DataFrame:
        """The `k` products whose image embeddings are nearest (cosine distance) to this one's,
        optionally of the same gender or master category."""
        if scope not in SIMILAR_SCOPES:
            raise ValidationError(f"Similar products can be restricted to: {', '.join(SIMILAR_SCOPES)}.")
        if not 1 <= k <= 100:
            raise ValidationError("Ask for 1 to 100 similar products.")
        vector = self._guard(lambda: self.db.scalar("catalog_embedding", f"""
            SELECT image_embedding::text FROM {self.t.product_image_embeddingsdb} WHERE product_id = :id""",
                                                    {"id": int(product_id)}))
        if vector is None:
            return pd.DataFrame(columns=["product_id", "product_display_name", *FACETS, "price", "distance"])
        restriction = {"any": "", "gender": "AND p.gender = (SELECT gender FROM {p} WHERE product_id = :id)",
                       "category": "AND p.master_category = (SELECT master_category FROM {p} WHERE product_id = :id)"}
        where = restriction[scope].format(p=self.t.productsdb)
        return self._nearest("catalog_similar", vector, f"e.product_id <> :id {where}", {"id": int(product_id)},
                             k, exact)

    def _nearest(self, name: str, vector: str, where: str, params: dict, k: int, exact: bool) -> pd.DataFrame:
        """Products nearest to `vector`, re-sorted by distance (an iterative index scan may return
        them slightly out of order)."""
        sql = f"""
            SELECT * FROM (
                SELECT p.product_id, p.product_display_name, {', '.join('p.' + f for f in FACETS)}, p.price,
                       e.image_embedding <=> CAST(:vector AS vector) AS distance
                FROM {self.t.product_image_embeddingsdb} e JOIN {self.t.productsdb} p USING (product_id)
                WHERE {where}
                ORDER BY e.image_embedding <=> CAST(:vector AS vector)
                LIMIT :k) nearest
            ORDER BY distance, product_id"""

        def run():
            with self.db.read_only(name) as conn:
                if exact:
                    conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
                else:
                    conn.exec_driver_sql(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")
                    conn.exec_driver_sql("SET LOCAL hnsw.iterative_scan = relaxed_order")
                result = conn.execute(text(sql), {**params, "vector": vector, "k": k})
                return to_frame(result.fetchall(), list(result.keys()))
        return self._guard(run)

    # -- users ----------------------------------------------------------------------------

    def users(self, search: str = "", limit: int = 50) -> pd.DataFrame:
        return self._guard(lambda: self.db.frame("catalog_users", rf"""
            SELECT user_id, user_name, gender, age_band, region FROM {self.t.usersdb}
            WHERE user_name ILIKE :pattern ESCAPE '\' OR CAST(user_id AS TEXT) = :exact
            ORDER BY user_id LIMIT :limit""", {"pattern": like_pattern(typed_text(search, "user search")),
                                               "exact": search.strip(), "limit": limit}))

    def user_style(self, user_id: int) -> UserStyle | None:
        rows = self._guard(lambda: self.db.rows("catalog_user_style", f"""
            SELECT u.user_id, u.user_name, u.gender, u.age_band, u.region, s.preferred_categories,
                   s.preferred_colors, s.min_price, s.max_price, s.avg_price, s.num_interactions
            FROM {self.t.usersdb} u JOIN {self.t.user_style_featuresdb} s USING (user_id)
            WHERE u.user_id = :id""", {"id": int(user_id)}))
        if not rows:
            return None
        row = rows[0]
        for key in ("min_price", "max_price", "avg_price"):
            row[key] = float(row[key])
        row["preferred_categories"], row["preferred_colors"] = list(row["preferred_categories"]), list(row["preferred_colors"])
        return UserStyle(**row)

    def recommendations(self, user_id: int, k: int = 12, *, exact: bool = False) -> pd.DataFrame:
        """Products nearest to the user's style vector among their preferred article types and
        colours, within their price band and gender (or unisex)."""
        vector = self._guard(lambda: self.db.scalar("catalog_style_vector", f"""
            SELECT style_embedding::text FROM {self.t.user_style_featuresdb} WHERE user_id = :id""",
                                                    {"id": int(user_id)}))
        if vector is None:
            return pd.DataFrame(columns=["product_id", "product_display_name", *FACETS, "price", "distance"])
        where = """p.article_type = ANY(s.preferred_categories) AND p.base_color = ANY(s.preferred_colors)
                    AND p.price BETWEEN s.min_price AND s.max_price AND p.gender IN (u.gender, 'Unisex')"""
        source = (f"(SELECT * FROM {self.t.user_style_featuresdb} WHERE user_id = :id) s, "
                  f"(SELECT gender FROM {self.t.usersdb} WHERE user_id = :id) u")
        return self._nearest("catalog_recommendations", vector,
                             f"EXISTS (SELECT 1 FROM {source} WHERE {where})", {"id": int(user_id)}, k, exact)

    # -- helpers --------------------------------------------------------------------------

    def _guard(self, read):
        """A missing synced table becomes a message that names it."""
        try:
            return read()
        except AppError as exc:
            if exc.category is Category.CONFIGURATION and "does not exist" in (exc.detail or exc.message):
                raise AppError(f"The fashion catalog is not available: {exc.message.split(': ', 1)[-1]} Check "
                               f"FASHION_SCHEMA (now '{self.t.schemas['fashion']}') and that the synced tables "
                               f"{', '.join(self.t.tables_of('fashion'))} exist (FASHION_*_TABLE name them).",
                               category=Category.CONFIGURATION, detail=exc.detail) from exc
            raise


def _suffix_params(where: str, n: int) -> str:
    """Rename :name to :name_n so the facets' subqueries can share one statement."""
    return re.sub(r":([a-z_]+\d*)", lambda m: f":{m.group(1)}_{n}", where)
