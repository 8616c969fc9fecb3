"""The fashion catalog's reads, checked against pandas and numpy on the same demo tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.catalog import FACETS, Catalog, ProductFilter
from data.errors import AppError, ValidationError


@pytest.fixture(scope="module")
def catalog(shared_db):
    """The catalog on the shared demo copy, with the HNSW index the app builds at start-up."""
    from data.backend import create_vector_index
    from data.settings import load_settings
    from data.tables import Tables
    tables = Tables.from_settings(load_settings({}))
    create_vector_index(shared_db, tables)
    return Catalog(shared_db, tables)


@pytest.fixture(scope="module")
def products(shared_db) -> pd.DataFrame:
    return shared_db.frame("all_products", "SELECT * FROM fashion_demo.productsdb")


@pytest.fixture(scope="module")
def vectors(shared_db) -> tuple[np.ndarray, np.ndarray]:
    rows = shared_db.rows("all_vectors", "SELECT product_id, image_embedding::text AS v "
                                         "FROM fashion_demo.product_image_embeddingsdb ORDER BY product_id")
    ids = np.array([r["product_id"] for r in rows])
    matrix = np.array([np.fromstring(r["v"].strip("[]"), sep=",") for r in rows], dtype=np.float32)
    return ids, matrix


def matching(products: pd.DataFrame, chosen: ProductFilter, skip: str | None = None) -> pd.DataFrame:
    mask = pd.Series(True, index=products.index)
    for facet, values in chosen.chosen().items():
        if facet != skip:
            mask &= products[facet].isin(values)
    if chosen.price_min is not None:
        mask &= products["price"] >= chosen.price_min
    if chosen.price_max is not None:
        mask &= products["price"] <= chosen.price_max
    if chosen.search:
        mask &= products["product_display_name"].str.lower().str.contains(chosen.search.lower(), regex=False)
    return products[mask]


FILTERS = [
    ProductFilter(),
    ProductFilter(choices=(("gender", ("Women",)),)),
    ProductFilter(choices=(("gender", ("Men", "Unisex")), ("master_category", ("Footwear",))), price_max=60),
    ProductFilter(choices=(("base_color", ("Black", "Navy Blue")), ("season", ("Summer",))), price_min=20,
                  price_max=80, search="printed"),
    ProductFilter(search="Kestrel"),
    ProductFilter(choices=(("article_type", ("Sarees",)), ("gender", ("Men",)))),      # nothing matches
]


@pytest.mark.parametrize("chosen", FILTERS)
def test_facet_counts_follow_the_other_filters(catalog, products, chosen):
    counts = catalog.facet_counts(chosen)
    assert set(counts) == set(FACETS)
    for facet in FACETS:
        expected = matching(products, chosen, skip=facet)[facet].value_counts()
        shown = dict(zip(counts[facet]["value"], counts[facet]["products"]))
        assert shown == expected.to_dict(), facet


@pytest.mark.parametrize("chosen", FILTERS)
@pytest.mark.parametrize("sort, column, descending", [("name", "product_display_name", False),
                                                      ("price_high", "price", True)])
def test_a_filtered_page_matches_pandas(catalog, products, chosen, sort, column, descending):
    expected = matching(products, chosen).sort_values([column, "product_id"], ascending=not descending,
                                                      kind="mergesort")
    if column == "product_display_name":          # PostgreSQL's collation, not Python's byte order
        expected = expected.sort_values("product_id")
    page = catalog.page(chosen, page=2, size=24, sort=sort)
    assert page.total == len(expected)
    if column == "price":
        assert list(page.rows["product_id"]) == list(expected["product_id"].iloc[24:48])
    else:
        assert set(page.rows["product_id"]) <= set(expected["product_id"]) and len(page.rows) == len(
            expected.iloc[24:48])


def test_pages_cover_the_matches_once(catalog, products):
    chosen = ProductFilter(choices=(("article_type", ("Ties",)),))
    first = catalog.page(chosen, page=1, size=50, sort="price_low")
    seen = []
    for number in range(1, first.pages + 1):
        seen += list(catalog.page(chosen, page=number, size=50, sort="price_low").rows["product_id"])
    assert sorted(seen) == sorted(matching(products, chosen)["product_id"]) and len(seen) == len(set(seen))


@pytest.mark.parametrize("search", ["%", "_", "\\", "'; DROP TABLE fashion_demo.productsdb; --", "O'Brien",
                                    ":search", "%%_\\'\"", "Ünïcödé ☃"])
def test_search_strings_with_sql_metacharacters_are_plain_text(catalog, products, search):
    page = catalog.page(ProductFilter(search=search))
    expected = products["product_display_name"].str.lower().str.contains(search.lower(), regex=False).sum()
    assert page.total == expected
    assert catalog.facet_counts(ProductFilter(search=search))["gender"]["products"].sum() == expected


def test_bad_filters_are_refused_with_a_reason(catalog):
    with pytest.raises(ValidationError, match=r"lowest price \(90.00\) is above the highest \(10.00\)"):
        catalog.page(ProductFilter(price_min=90, price_max=10))
    with pytest.raises(ValidationError, match="no facet called brand"):
        catalog.facet_counts(ProductFilter(choices=(("brand", ("Nike",)),)))
    with pytest.raises(ValidationError, match="cannot be negative"):
        catalog.page(ProductFilter(price_min=-1))
    with pytest.raises(ValidationError, match="Sort by one of"):
        catalog.page(ProductFilter(), sort="price; DROP TABLE x")
    with pytest.raises(ValidationError, match="at most 200"):
        catalog.page(ProductFilter(search="x" * 201))


def test_an_unknown_facet_value_matches_nothing(catalog):
    page = catalog.page(ProductFilter(choices=(("base_color", ("Ultraviolet",)),)))
    assert page.total == 0 and page.rows.empty


def brute_force(vectors, product_id: int, allowed: np.ndarray | None = None, k: int = 10) -> list[int]:
    ids, matrix = vectors
    query = matrix[ids == product_id][0]
    distance = 1 - (matrix @ query) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    keep = (ids != product_id) if allowed is None else (ids != product_id) & np.isin(ids, allowed)
    order = np.lexsort((ids[keep], distance[keep]))
    return list(ids[keep][order][:k])


SAMPLE = [10001, 10777, 12345, 20000, 31999, 42042, 53999]


def test_similar_products_exact_scan_matches_numpy(catalog, vectors):
    for product_id in SAMPLE:
        exact = catalog.similar(product_id, k=10, exact=True)
        assert list(exact["product_id"]) == brute_force(vectors, product_id)
        assert exact["distance"].is_monotonic_increasing


def test_similar_products_through_the_index_recall_at_least_95_percent(catalog, vectors, shared_db):
    plan = shared_db.scalar("plan", "EXPLAIN (FORMAT JSON) SELECT product_id FROM fashion_demo.product_image_embeddingsdb "
                                    "ORDER BY image_embedding <=> (SELECT image_embedding FROM "
                                    "fashion_demo.product_image_embeddingsdb LIMIT 1) LIMIT 10")
    assert "product_image_embeddings_hnsw" in str(plan), "the approximate path really uses the HNSW index"
    found = total = 0
    for product_id in np.random.default_rng(7).choice(vectors[0], 40, replace=False):
        truth = set(brute_force(vectors, product_id))
        approximate = set(catalog.similar(product_id, k=10)["product_id"])
        found, total = found + len(truth & approximate), total + len(truth)
    assert found / total >= 0.95


def test_similar_products_can_keep_to_the_same_gender_or_category(catalog, products, vectors):
    product = catalog.product(12345)
    same_gender = products[products["gender"] == product["gender"]]["product_id"].to_numpy()
    shown = catalog.similar(12345, k=10, scope="gender", exact=True)
    assert list(shown["product_id"]) == brute_force(vectors, 12345, allowed=same_gender)
    category = catalog.similar(12345, k=10, scope="category")
    assert len(category) == 10 and set(category["master_category"]) == {product["master_category"]}


def test_a_product_without_an_embedding_has_no_similar_products(catalog):
    assert catalog.similar(1, k=5).empty and catalog.product(1) is None


def test_a_users_style_and_recommendations(catalog, shared_db):
    style = catalog.user_style(7)
    stored = shared_db.rows("s", "SELECT * FROM fashion_demo.user_style_featuresdb WHERE user_id = 7")[0]
    assert style.preferred_categories == list(stored["preferred_categories"])
    assert style.min_price == float(stored["min_price"]) and style.num_interactions == stored["num_interactions"]
    picks = catalog.recommendations(7, k=8)
    assert not picks.empty and picks["distance"].is_monotonic_increasing
    assert set(picks["article_type"]) <= set(style.preferred_categories)
    assert set(picks["base_color"]) <= set(style.preferred_colors)
    assert picks["price"].between(style.min_price, style.max_price).all()
    assert set(picks["gender"]) <= {style.gender, "Unisex"}
    exact = catalog.recommendations(7, k=8, exact=True)
    assert list(exact["product_id"]) == list(picks["product_id"])
    assert catalog.user_style(999_999) is None


def test_users_can_be_found_by_name_or_id(catalog):
    assert list(catalog.users("7")["user_id"])[:1] == [7]
    assert catalog.users("%").empty or len(catalog.users("%")) <= 50


def test_a_missing_table_is_named(db, tables):
    from data.tables import Tables
    with db.transaction("empty schema") as conn:
        conn.exec_driver_sql("CREATE SCHEMA empty_fashion")
    broken = Catalog(db, Tables({**tables.schemas, "fashion": "empty_fashion"}))
    with pytest.raises(AppError, match="productsdb") as raised:
        broken.page(ProductFilter())
    assert "FASHION_SCHEMA" in raised.value.message


def test_synced_tables_can_have_other_names(db, tables):
    from data.settings import load_settings
    from data.tables import Tables
    with db.transaction("rename") as conn:
        conn.exec_driver_sql("ALTER SCHEMA fashion_demo RENAME TO ecom_fashion")
        conn.exec_driver_sql("ALTER TABLE ecom_fashion.productsdb RENAME TO products_v2")
    renamed = Tables.from_settings(load_settings({"FASHION_SCHEMA": "ecom_fashion",
                                                  "FASHION_PRODUCTS_TABLE": "products_v2"}))
    catalog = Catalog(db, renamed)
    assert catalog.page(ProductFilter()).total == 44_000
    assert len(catalog.similar(10001, k=5, exact=True)) == 5
