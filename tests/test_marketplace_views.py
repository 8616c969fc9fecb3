"""The Marketplace workspace as components (no browser): the shared city drives every view,
figures on screen match the data layer, and bad choices become messages."""
from __future__ import annotations

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Title

from dashboard.marketplace.state import ALL_TYPES, MarketplaceState
from dashboard.marketplace.views import AmenitiesTab, DemandTab, MarketplaceView, OverviewTab, PropertiesTab
from dashboard.state import ALL_CITIES, AppState
from data.marketplace import Marketplace

from .helpers import page_text


@pytest.fixture
def state(shared_db, tables):
    queries = Marketplace(shared_db, tables)
    app = AppState(user="analyst@example.com")
    app.set_cities(queries.cities())
    return MarketplaceState(app, queries)


def rendered(view) -> pn.viewable.Viewable:
    panel = pn.panel(view)
    panel.root_model = panel.get_root(Document())   # builds the models: bindings are live from here on
    return panel


def plot_titles(panel) -> list[str]:
    """The chart titles as drawn: read from the Bokeh models the page would show."""
    return [t.text for t in panel.root_model.select({"type": Title}) if t.text]


def texts(panel) -> str:
    return page_text([panel])


def test_changing_the_shared_city_updates_every_view(state):
    overview, properties = rendered(OverviewTab(state=state)), PropertiesTab(state=state)
    properties_panel = rendered(properties)
    amenities, demand = rendered(AmenitiesTab(state=state)), rendered(DemandTab(state=state))

    state.app.city = "Phuket"
    assert any("Conversion funnel: Phuket" in t for t in plot_titles(overview))
    assert any("Views vs conversion: Phuket" in t for t in plot_titles(properties_panel))
    assert set(properties.table.table.value["city"]) == {"Phuket"}
    assert any("Phuket" in t for t in plot_titles(amenities))
    assert "Phuket" in texts(demand) and any("Phuket" in t for t in plot_titles(demand))

    state.app.city = "Agra"
    assert any("Conversion funnel: Agra" in t for t in plot_titles(overview))
    assert any("Views vs conversion: Agra" in t for t in plot_titles(properties_panel))
    assert set(properties.table.table.value["city"]) == {"Agra"}
    assert any("Agra" in t for t in plot_titles(amenities))
    assert "Agra" in texts(demand) and "Phuket" not in texts(demand)


def test_cards_show_the_data_layer_figures(state):
    state.app.city = "Phuket"
    overview, demand = rendered(OverviewTab(state=state)), rendered(DemandTab(state=state))
    for row in state.quadrants().itertuples():
        assert f"{row.cities} cities" in texts(overview)
    devices = state.devices().set_index("device")
    for device in ("desktop", "mobile", "tablet"):
        assert f"{devices.loc[device, 'viewers']:,} viewers" in texts(demand)
    funnel = state.funnel()
    assert f"{funnel['rate_from_top'].iloc[-1]:.2f}%" in texts(overview)


def test_scatter_selection_narrows_the_table_and_ticked_rows_ring_points(state):
    state.app.city = "Phuket"
    tab = PropertiesTab(state=state)
    rendered(tab)
    points = state.points()
    tab.selection.event(index=[0, 1, 2])
    assert state.chart_selection == list(points["id"].iloc[:3])
    assert sorted(tab.table.table.value["id"]) == sorted(points["id"].iloc[:3])
    assert len(tab.table.table.selection) == 3, "the chosen rows are ticked"
    assert sorted(state.table_selection) == sorted(points["id"].iloc[:3])
    tab.table.table.selection = [0]
    ringed = tab.rings.last.data
    assert list(ringed["name"]) == [tab.table.table.value.iloc[0]["name"]]
    tab.clear_selection()
    assert state.chart_selection == [] and tab.table.page.total == state.property_count()


def test_city_change_forgets_the_selection(state):
    state.app.city = "Phuket"
    state.chart_selection = ["x"]
    state.app.city = "Agra"
    assert state.chart_selection == [] and state.table_selection == []


def test_unknown_choices_are_refused_by_the_state(state):
    with pytest.raises(ValueError):
        state.app.city = "Atlantis"
    with pytest.raises(ValueError):
        state.property_type = "Castle"
    with pytest.raises(ValueError):
        state.weeks = 400
    assert state.app.city == ALL_CITIES and state.property_type == ALL_TYPES and state.weeks == 6


def test_a_bad_table_filter_shows_a_message_in_place(state):
    tab = PropertiesTab(state=state)
    rendered(tab)
    tab.table.table.filters = [{"field": "views", "type": "like", "value": "lots"}]
    assert "not a number filter" in tab.table.message
    tab.table.table.filters = [{"field": "views", "type": "like", "value": ">100"}]
    assert tab.table.message == "" and (tab.table.table.value["views"] > 100).all()


def last_month_without_agra_visits(db, tables) -> MarketplaceState:
    """Last month's state, after removing Agra's recent visits (an empty period for that city)."""
    from sqlalchemy import text
    with db.transaction("remove_recent_agra") as conn:
        conn.execute(text(f"DELETE FROM {tables.city_funnel} WHERE city = 'Agra' AND event_date > CURRENT_DATE - 40"))
    queries = Marketplace(db, tables)
    app = AppState()
    app.set_cities(queries.cities())
    return MarketplaceState(app, queries, date_range="last_month")


def test_empty_range_gives_a_sentence_not_a_chart(db, tables):
    state = last_month_without_agra_visits(db, tables)
    app = state.app
    app.city = "Agra"
    overview = rendered(OverviewTab(state=state))
    assert "No visitors for Agra in the last month." in texts(overview)


def test_a_chart_comes_back_after_a_sentence_stood_in_for_it(db, tables):
    """After an empty period (a sentence instead of the chart), the next city draws its funnel:
    showing the chart again inside its own redraw used to fail, so that city's chart never came."""
    state = last_month_without_agra_visits(db, tables)
    app = state.app
    tab = OverviewTab(state=state)
    overview = rendered(tab)
    app.city = "Agra"
    assert "No visitors for Agra in the last month." in texts(overview)
    app.city = "Phuket"
    assert "Conversion funnel: Phuket, last month" in plot_titles(overview)
    assert tab.funnel.frame.visible and not tab.funnel.message.visible


def test_refresh_clears_the_process_cache(state):
    state.investment()
    version = state.version
    state.refresh()
    assert state.version == version + 1 and not any(len(c) for c in state.queries._caches._caches.values())


def test_workspace_builds_with_its_four_tabs(state):
    view = MarketplaceView(state=state)
    rendered(view)
    assert view.tabs.labels == ["Overview", "Properties", "Amenities", "Demand"]
    state.tab = "demand"
    assert view.tabs.active == 3


def test_a_chart_shown_again_after_another_workspace_shows_the_current_city(state):
    """Leaving the workspace and coming back renders the charts afresh; they must not come back
    with the figures of the city they were first drawn for."""
    tab = OverviewTab(state=state)
    tab.__panel__().get_root(Document())
    state.app.city = "Agra"
    again = tab.funnel.pane.get_root(Document())
    assert [t.text for t in again.select({"type": Title})] == ["Conversion funnel: Agra, last quarter"]


def test_two_sessions_share_no_model(shared_db, tables):
    """A Bokeh model belongs to one document: one shared by two sessions (a module-level formatter
    was) breaks the second session's page."""
    first, second = Document(), Document()
    queries = Marketplace(shared_db, tables)
    for doc in (first, second):
        app = AppState(user="analyst@example.com")
        app.set_cities(queries.cities())
        session = MarketplaceState(app, queries)
        pn.Column(*(tab(state=session) for tab in (OverviewTab, PropertiesTab, AmenitiesTab, DemandTab))).server_doc(doc)
    assert len(first.models) > 100
    assert {m.id for m in first.models} & {m.id for m in second.models} == set()
