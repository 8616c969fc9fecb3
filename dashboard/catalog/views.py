"""The Catalog workspace: browse fashion products with facets and paging, open one to see the
products that look most like it, and pick a user to see their style and recommendations."""
from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.catalog import FACETS

from ..markup import HTML, Markup, html, join
from ..widgets import CARD_CSS, LazyTabs, empty_html, heading, on_change
from .state import TABS, CatalogState

TAB_TITLES = {"browse": "Browse", "product": "Product & similar", "style": "User style"}
SORT_LABELS = {"name": "Name", "price_low": "Price: low to high", "price_high": "Price: high to low",
               "newest": "Newest season first"}
SCOPE_LABELS = {"any": "Any product", "gender": "Same gender", "category": "Same category"}
# CSS colours for the catalog's colour names (swatches); unknown names get a neutral grey.
SWATCHES = {
    "Black": "#111", "White": "#fff", "Blue": "#1e63d6", "Brown": "#7b4a26", "Grey": "#8a8a8a", "Red": "#d32f2f",
    "Green": "#2e7d32", "Pink": "#f48fb1", "Navy Blue": "#1a237e", "Purple": "#7b1fa2", "Silver": "#c0c0c0",
    "Yellow": "#fdd835", "Beige": "#e8d9b5", "Gold": "#d4af37", "Maroon": "#800000", "Orange": "#fb8c00",
    "Olive": "#808000", "Multi": "linear-gradient(135deg,#e53935,#fdd835,#43a047,#1e88e5)", "Cream": "#fffdd0",
    "Charcoal": "#36454f", "Peach": "#ffcba4", "Off White": "#f8f6ee", "Lavender": "#b57edc", "Khaki": "#c3b091",
    "Teal": "#008080", "Magenta": "#d81b60", "Mustard": "#e1ad01", "Tan": "#d2b48c",
}
PRODUCT_CSS = CARD_CSS + """
.product { border: 1px solid rgba(128,128,128,.28); border-radius: 10px; padding: 10px 12px; height: 100%;
           box-sizing: border-box; font-size: .85rem; line-height: 1.35; }
.product img { width: 100%; height: 140px; object-fit: contain; margin-bottom: 6px; }
.product .name { font-weight: 600; margin-bottom: 4px; }
.product .meta { opacity: .75; }
.product .price { font-size: 1.05rem; font-weight: 600; margin-top: 6px; }
.product .distance { float: right; opacity: .7; font-size: .8rem; margin-top: 8px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 5px;
          border: 1px solid rgba(0,0,0,.25); vertical-align: -1px; }
.chips span { display: inline-block; border: 1px solid rgba(128,128,128,.4); border-radius: 12px;
              padding: 1px 9px; margin: 2px 4px 2px 0; font-size: .85rem; }
"""


def _price_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def swatch_color(color: str) -> str:
    return SWATCHES.get(color, "#9e9e9e")


def swatch(color: str) -> Markup:
    return html('<span class="swatch" style="background:{}"></span>', swatch_color(color))


def money(value: float) -> str:
    return f"${value:,.2f}"


def product_card(row: dict) -> dict:
    """What a product card shows, as data: the browser writes it into the card as text."""
    image = str(row.get("image_url") or "")
    distance = row.get("distance")
    return {"id": _plain(row["product_id"]), "name": str(row["product_display_name"]),
            "meta": f"{row['article_type']} · {row['gender']} · {row['season']}", "color": str(row["base_color"]),
            "swatch": swatch_color(row["base_color"]), "price": money(float(row["price"])),
            "image": image if image.startswith(("https://", "http://")) else "",
            "distance": "" if distance is None or pd.isna(distance) else f"distance {distance:.3f}"}


class CardGrid(pn.custom.JSComponent):
    """Product cards drawn by the browser from one list, each with a "Similar items" button.

    One model for the whole grid: a new page is one message with the new cards, where a grid of
    Panel cards with Material buttons was seventy-odd models to build, send and keep per session.
    Every value is set as text (or as an image address), so nothing in the catalog can become markup."""

    cards = param.List(default=[], doc="The cards on screen, as `product_card` describes them.")
    empty = param.String(default="", doc="Shown (as text) instead of the cards when there are none.")

    _esm = """
    export function render({ model, el }) {
      const grid = document.createElement("div")
      grid.className = "grid"
      el.appendChild(grid)
      const part = (parent, tag, cls, text) => {
        const node = document.createElement(tag)
        node.className = cls
        if (text !== undefined) node.textContent = text
        parent.appendChild(node)
        return node
      }
      const draw = () => {
        grid.replaceChildren()
        if (!model.cards.length) {
          part(grid, "div", "empty", model.empty)
          return
        }
        for (const card of model.cards) {
          const cell = part(grid, "div", "cell")
          const product = part(cell, "div", "product")
          if (card.image) {
            const picture = part(product, "img", "")
            picture.alt = ""
            picture.loading = "lazy"
            picture.src = card.image
          }
          part(product, "div", "name", card.name)
          part(product, "div", "meta", card.meta)
          const colour = part(product, "div", "meta")
          part(colour, "span", "swatch").style.background = card.swatch
          colour.appendChild(document.createTextNode(card.color))
          if (card.distance) part(product, "span", "distance", card.distance).title = "cosine distance"
          part(product, "div", "price", card.price)
          const open = part(cell, "button", "open", "Similar items")
          open.addEventListener("click", () => model.send_msg({open: card.id}))
        }
      }
      draw()
      model.on(["cards", "empty"], draw)
    }
    """
    _stylesheets = [PRODUCT_CSS + """
.grid { display: flex; flex-wrap: wrap; gap: 12px; width: 100%; }
.cell { width: 230px; display: flex; flex-direction: column; }
.cell .product { flex: 1; }
.cell .open { align-self: flex-start; margin-top: 4px; border: 0; background: none; cursor: pointer;
              color: #1976d2; font: 500 .8125rem Roboto, Helvetica, Arial, sans-serif; letter-spacing: .02857em;
              text-transform: uppercase; padding: 4px 5px; border-radius: 4px; }
.cell .open:hover { background: rgba(25, 118, 210, .04); }
.empty { width: 100%; }
"""]

    def __init__(self, on_open, **params):
        super().__init__(**params)
        self._on_open = on_open

    def _handle_msg(self, message) -> None:
        if isinstance(message, dict) and "open" in message:
            self._on_open(message["open"])


class ProductCards(pn.viewable.Viewer):
    """A grid of product cards, each with a button that opens the product."""

    def __init__(self, open_product, empty: str, **params):
        super().__init__(**params)
        self.empty = empty
        self.grid = CardGrid(open_product, empty=empty, sizing_mode="stretch_width")

    def show(self, rows: pd.DataFrame | None, empty: str | None = None) -> None:
        records = [] if rows is None or rows.empty else rows.to_dict("records")
        self.grid.param.update(cards=[product_card(r) for r in records], empty=empty or self.empty)

    def __panel__(self):
        return self.grid


def _plain(value):
    return value.item() if hasattr(value, "item") else value


class BrowseTab(pn.viewable.Viewer):
    """Facets and a price range on the left, a page of product cards on the right."""

    state = param.ClassSelector(class_=CatalogState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.search = pmui.TextInput.from_param(s.param.search, label="Search product names",
                                                sizing_mode="stretch_width")
        self.facets = {facet: pmui.MultiChoice.from_param(s.param[facet], label=label, options=list(getattr(s, facet)),
                                                          sizing_mode="stretch_width")
                       for facet, label in FACETS.items()}
        # Text boxes, not number inputs: an empty box means "no limit" (a number input shows 0.0).
        self.price_min = pmui.TextInput(label="Lowest price", value=_price_text(s.price_min), width=130,
                                        placeholder="no limit")
        self.price_max = pmui.TextInput(label="Highest price", value=_price_text(s.price_max), width=130,
                                        placeholder="no limit")
        self.price_min.param.watch(lambda e: self._set_price("price_min", e.new), "value")
        self.price_max.param.watch(lambda e: self._set_price("price_max", e.new), "value")
        self.sort = pmui.Select.from_param(s.param.sort, label="Sort by",
                                           options={v: k for k, v in SORT_LABELS.items()}, width=220)
        clear = pmui.Button(label="Clear filters", icon="filter_alt_off", variant="outlined", size="small")
        clear.on_click(lambda _: self._clear())
        self.clear = clear
        self.pager = pmui.Pagination(count=1, value=0, size="small")
        self.pager.param.watch(lambda e: s.param.update(page=int(e.new) + 1), "value")
        self.summary = HTML("", margin=(14, 10))
        self.cards = ProductCards(s.open_product, "No product matches these filters. Remove a filter or widen "
                                                  "the price range.")
        on_change(s.products, self._show_products)
        on_change(s.facet_counts, self._show_facets)
        self._show_products()
        self._show_facets()

    def _set_price(self, name: str, typed: str) -> None:
        """A typed price, or a message where the cards are; the filter keeps its last good value."""
        text = (typed or "").strip().replace("$", "").replace(",", "")
        try:
            value = float(text) if text else None
        except ValueError:
            self.summary.object = ""
            self.cards.show(None, f"'{typed}' is not a price: type a number like 25 or 19.99, or leave the box "
                                  "empty for no limit.")
            return
        self.state.param.update(**{name: value})

    def _clear(self) -> None:
        self.state.clear_filters()                  # the search, the facets and the sort follow the state
        self.price_min.value = self.price_max.value = ""

    def shown(self) -> None:
        """On screen again: if the last read failed (the database was away), read again."""
        if not self.summary.object:
            self._show_products()
            self._show_facets()

    def _show_products(self) -> None:
        page = self.state.products()
        if self.state.error:
            self.summary.object = ""
            self.cards.show(None, self.state.error)
            return
        self.cards.show(page.rows)
        self.pager.param.update(count=page.pages, value=page.page - 1)
        estimate = "about " if page.total_is_estimate else ""       # last: the summary says the page is shown
        self.summary.object = html("<b>{}{}</b> product{}{}", estimate, f"{page.total:,}", "s" if page.total != 1 else "",
                                   f" · {page.first_row:,}–{page.last_row:,}" if page.total else "")

    def _show_facets(self) -> None:
        counts = self.state.facet_counts()
        for facet, widget in self.facets.items():
            chosen = list(getattr(self.state, facet))
            frame = counts.get(facet, pd.DataFrame(columns=["value", "products"]))
            options = {f"{value} ({n:,})": value for value, n in zip(frame["value"], frame["products"])}
            for value in chosen:                      # a chosen value stays listed even when nothing is left
                if value not in options.values():
                    options[f"{value} (0)"] = value
            widget.param.update(options=options, value=chosen)

    def __panel__(self):
        low, high = self.state.catalog.price_range()
        prices = pn.Row(self.price_min, self.price_max)
        hint = HTML(html("<span style='opacity:.7;font-size:.8rem'>Prices run from {} to {}.</span>", money(low),
                         money(high)), margin=(0, 10))
        side = pn.Column(self.search, *self.facets.values(), prices, hint, self.clear, width=300)
        main = pn.Column(pn.Row(self.summary, pn.layout.HSpacer(), self.sort), self.cards, self.pager,
                         sizing_mode="stretch_width")
        return pn.Row(side, main, sizing_mode="stretch_width")


class ProductTab(pn.viewable.Viewer):
    """The opened product and the products whose images look most like it."""

    state = param.ClassSelector(class_=CatalogState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.details = HTML("", stylesheets=[PRODUCT_CSS], sizing_mode="stretch_width")
        self.scope = pmui.RadioButtonGroup.from_param(s.param.scope, options={v: k for k, v in SCOPE_LABELS.items()},
                                                      size="small")
        self.cards = ProductCards(s.open_product, "No similar products: this product has no image embedding.")
        on_change(s.similar, self._show)
        self._show()

    def _show(self) -> None:
        s = self.state
        product = s.product()
        if product is None:
            self.details.object = empty_html(s.error or (
                "Open a product from Browse to see its details and the products that look most like it."
                if s.product_id is None else f"There is no product {s.product_id}."))
            self.cards.show(None)
            return
        facts = join(html("<tr><td style='opacity:.7;padding-right:14px'>{}</td><td>{}{}</td></tr>", label,
                          swatch(product[f]) if f == "base_color" else "", str(product[f]))
                     for f, label in FACETS.items())
        self.details.object = html(
            "<h3 style='margin:6px 0'>{}</h3><div class='price' style='font-size:1.3rem;font-weight:600'>{}</div>"
            "<table style='margin-top:8px'>{}<tr><td style='opacity:.7'>Year</td><td>{}</td></tr>"
            "<tr><td style='opacity:.7'>Product id</td><td>{}</td></tr></table>",
            product["product_display_name"], money(product["price"]), facts, product["year"], product["product_id"])
        self.cards.show(s.similar())

    def __panel__(self):
        return pn.Column(self.details, heading("Similar products (by image embedding, nearest first)"),
                         self.scope, self.cards, sizing_mode="stretch_width")


class StyleTab(pn.viewable.Viewer):
    """A user's style features and the products nearest to their style."""

    state = param.ClassSelector(class_=CatalogState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        people = s.catalog.users(limit=5000)
        self._ids = {f"{r.user_name} (#{r.user_id})": int(r.user_id) for r in people.itertuples()}
        current = next((label for label, uid in self._ids.items() if uid == s.user_id), None)
        self.picker = pmui.AutocompleteInput(label="User", options=list(self._ids), value=current, restrict=True,
                                             width=320, placeholder="Type a name")
        self.picker.param.watch(lambda e: s.param.update(user_id=self._ids.get(e.new)), "value")
        self.profile = HTML("", stylesheets=[PRODUCT_CSS], sizing_mode="stretch_width")
        self.cards = ProductCards(s.open_product, "No product matches this user's types, colours and price band.")
        on_change(s.style, self._show)
        self._show()

    def _show(self) -> None:
        s = self.state
        style = s.style()
        if style is None:
            self.profile.object = empty_html(s.error or ("Pick a user to see their style and recommendations."
                                                         if s.user_id is None else f"There is no user {s.user_id}."))
            self.cards.show(None)
            return
        chips = lambda items, swatches=False: join(  # noqa: E731
            html("<span>{}{}</span>", swatch(i) if swatches else "", i) for i in items)
        self.profile.object = html(
            "<h3 style='margin:6px 0'>{}</h3><div class='meta'>{} · {} · {} · {} interactions</div>"
            "<div class='chips' style='margin-top:8px'><b>Prefers</b> {}</div>"
            "<div class='chips'><b>Colours</b> {}</div>"
            "<div style='margin-top:4px'><b>Price band</b> {} – {} (average {})</div>",
            style.user_name, style.gender, style.age_band, style.region, style.num_interactions,
            chips(style.preferred_categories), chips(style.preferred_colors, True), money(style.min_price),
            money(style.max_price), money(style.avg_price))
        self.cards.show(s.recommendations())

    def __panel__(self):
        return pn.Column(self.picker, self.profile, heading("Recommended for this user (nearest to their style)"),
                         self.cards, sizing_mode="stretch_width")


class CatalogView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=CatalogState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        builders = {"browse": BrowseTab, "product": ProductTab, "style": StyleTab}
        self.tabs = LazyTabs.of(s.param.tab, {name: (TAB_TITLES[name], lambda b=builders[name]: b(state=s))
                                              for name in TABS})

    def shown(self) -> None:
        self.tabs.shown()

    def __panel__(self):
        return pn.Column(self.tabs, sizing_mode="stretch_width")

