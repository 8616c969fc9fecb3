"""What a person chose in the Catalog workspace, and the data that follows from it."""
from __future__ import annotations

import pandas as pd
import param

from data.catalog import FACETS, SIMILAR_SCOPES, SORTS, Catalog, ProductFilter, UserStyle
from data.errors import AppError
from data.paging import Page

from ..state import AppState

TABS = ("browse", "product", "style")
PAGE_SIZE = 24
SIMILAR = 12            # similar products and recommendations shown


class CatalogState(param.Parameterized):
    """Filters, the page, the product opened and the user picked. Facet choices are one list per
    facet (named like the columns) so each can travel in the link."""

    app = param.ClassSelector(class_=AppState, doc="The session's shared state.")
    tab = param.Selector(default="browse", objects=list(TABS), doc="The tab on screen.")
    search = param.String(default="", doc="Text searched in product names.")
    price_min = param.Number(default=None, allow_None=True, doc="Lowest price; None for no lower bound.")
    price_max = param.Number(default=None, allow_None=True, doc="Highest price; None for no upper bound.")
    sort = param.Selector(default="name", objects=list(SORTS), doc="Order of the products.")
    page = param.Integer(default=1, bounds=(1, None), doc="Page number, from 1.")
    product_id = param.Integer(default=None, allow_None=True, doc="The product opened.")
    scope = param.Selector(default="any", objects=list(SIMILAR_SCOPES),
                           doc="Similar products: any, the same gender, or the same category.")
    user_id = param.Integer(default=None, allow_None=True, doc="The user whose style is shown.")
    error = param.String(default="", doc="Why the last choice could not be shown; empty when fine.")
    gender = param.List(default=[], item_type=str, doc="Chosen genders.")
    master_category = param.List(default=[], item_type=str, doc="Chosen master categories.")
    sub_category = param.List(default=[], item_type=str, doc="Chosen sub-categories.")
    article_type = param.List(default=[], item_type=str, doc="Chosen article types.")
    base_color = param.List(default=[], item_type=str, doc="Chosen colours.")
    season = param.List(default=[], item_type=str, doc="Chosen seasons.")
    usage = param.List(default=[], item_type=str, doc="Chosen usages.")

    LINK = {"tab": "tab", "product_id": "product", "user_id": "user"}      # parameter -> the link's argument

    def __init__(self, app: AppState, catalog: Catalog, **params):
        if "tab" not in params and (params.get("product_id") or params.get("user_id")):
            params["tab"] = "product" if params.get("product_id") else "style"   # a link to a product or user
        super().__init__(app=app, **params)
        self.catalog = catalog

    @property
    def filter(self) -> ProductFilter:
        return ProductFilter(choices=tuple((f, tuple(getattr(self, f))) for f in FACETS if getattr(self, f)),
                             price_min=self.price_min, price_max=self.price_max, search=self.search.strip())

    @param.depends("search", "price_min", "price_max", "sort", *FACETS, watch=True)
    def _first_page(self) -> None:
        self.page = 1

    def clear_filters(self) -> None:
        self.param.update(search="", price_min=None, price_max=None, **{facet: [] for facet in FACETS})

    def _read(self, read, fallback):
        """A read, or `fallback` with the reason in `error` (bad input never raises into a view)."""
        try:
            value = read()
        except AppError as exc:
            self.error = exc.message
            return fallback
        self.error = ""
        return value

    @param.depends("search", "price_min", "price_max", "sort", "page", *FACETS)
    def products(self) -> Page:
        empty = Page(rows=pd.DataFrame(), total=0, page=1, size=PAGE_SIZE)
        return self._read(lambda: self.catalog.page(self.filter, self.page, PAGE_SIZE, self.sort), empty)

    @param.depends("search", "price_min", "price_max", *FACETS)
    def facet_counts(self) -> dict[str, pd.DataFrame]:
        empty = {f: pd.DataFrame(columns=["value", "products"]) for f in FACETS}
        return self._read(lambda: self.catalog.facet_counts(self.filter), empty)

    def open_product(self, product_id: int) -> None:
        self.param.update(product_id=int(product_id), tab="product")

    @param.depends("product_id")
    def product(self) -> dict | None:
        if self.product_id is None:
            return None
        return self._read(lambda: self.catalog.product(self.product_id), None)

    @param.depends("product_id", "scope")
    def similar(self) -> pd.DataFrame:
        if self.product_id is None:
            return pd.DataFrame()
        return self._read(lambda: self.catalog.similar(self.product_id, SIMILAR, self.scope), pd.DataFrame())

    @param.depends("user_id")
    def style(self) -> UserStyle | None:
        if self.user_id is None:
            return None
        return self._read(lambda: self.catalog.user_style(self.user_id), None)

    @param.depends("user_id")
    def recommendations(self) -> pd.DataFrame:
        if self.user_id is None:
            return pd.DataFrame()
        return self._read(lambda: self.catalog.recommendations(self.user_id, SIMILAR), pd.DataFrame())
