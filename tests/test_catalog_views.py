"""The Catalog workspace as components: what a shopper-analyst sees as they filter, page, open a
product and pick a user, without a browser."""
from __future__ import annotations

import pytest

from dashboard.catalog.state import PAGE_SIZE, CatalogState
from dashboard.catalog.views import BrowseTab, ProductTab, StyleTab
from dashboard.state import AppState
from data.catalog import Catalog


@pytest.fixture
def state(shared_db, tables):
    return CatalogState(AppState(user="analyst@example.com"), Catalog(shared_db, tables))


def shown(tab) -> list[dict]:
    """The cards on screen, in order, as the browser draws them."""
    return list(tab.cards.grid.cards)


def card_count(tab) -> int:
    return len(shown(tab))


def message(tab) -> str:
    """What the cards' place says when there are no cards."""
    assert not shown(tab)
    return tab.cards.grid.empty


def click_card(tab, index: int) -> None:
    """What the browser sends when the `index`-th card's "Similar items" button is clicked."""
    tab.cards.grid._handle_msg({"open": tab.cards.grid.cards[index]["id"]})


def test_choosing_a_facet_narrows_the_page_and_the_other_counts(state, shared_db):
    browse = BrowseTab(state=state)
    assert card_count(browse) == PAGE_SIZE
    browse.facets["gender"].value = ["Women"]
    women = shared_db.scalar("n", "SELECT count(*) FROM fashion_demo.productsdb WHERE gender = 'Women'")
    assert f"<b>{women:,}</b> products" in browse.summary.object
    colours = browse.facets["base_color"].options
    black = shared_db.scalar("n", "SELECT count(*) FROM fashion_demo.productsdb WHERE gender = 'Women' "
                                  "AND base_color = 'Black'")
    assert colours[f"Black ({black:,})"] == "Black"
    assert any(label.startswith("Women (") for label in browse.facets["gender"].options), "own facet unfiltered"


def test_paging_moves_through_the_matches(state):
    browse = BrowseTab(state=state)
    first = shown(browse)
    browse.pager.value = 1                     # the second page
    assert state.page == 2 and "25–48" in browse.summary.object
    assert shown(browse) != first and len(shown(browse)) == PAGE_SIZE
    browse.facets["season"].value = ["Winter"]
    assert state.page == 1, "a new filter starts again at the first page"


def test_a_reversed_price_range_is_explained_where_the_cards_were(state):
    browse = BrowseTab(state=state)
    browse.price_min.value, browse.price_max.value = "90", "10"
    assert "lowest price (90.00) is above the highest (10.00)" in message(browse)
    browse.price_max.value = "$100"
    assert state.error == "" and card_count(browse) == PAGE_SIZE and state.price_max == 100


@pytest.mark.parametrize("typed", ["shirt\x00", "x" * 300])
def test_a_search_that_is_not_plain_text_is_explained_not_widened(state, typed):
    browse = BrowseTab(state=state)
    browse.search.value = typed
    said = message(browse)
    assert "product search" in said and ("control or invisible" in said or "at most 200" in said)


def test_a_price_that_is_not_a_number_is_explained_and_the_filter_kept(state):
    browse = BrowseTab(state=state)
    browse.price_max.value = "50"
    browse.price_max.value = "cheap"
    assert "'cheap' is not a price" in message(browse) and state.price_max == 50
    browse.price_max.value = ""
    assert state.price_max is None and card_count(browse) == PAGE_SIZE


def test_opening_a_product_shows_its_similar_products(state):
    browse = BrowseTab(state=state)
    product = ProductTab(state=state)
    click_card(browse, 0)
    assert state.tab == "product" and state.product_id is not None
    assert "Product id" in product.details.object and card_count(product) == 12
    product.scope.value = "category"
    assert card_count(product) == 12
    state.product_id = 1
    assert "There is no product 1." in product.details.object


def test_picking_a_user_shows_their_style_and_recommendations(state):
    style = StyleTab(state=state)
    assert "Pick a user" in style.profile.object
    label = next(iter(style._ids))
    style.picker.value = label
    assert "Price band" in style.profile.object and card_count(style) > 0
