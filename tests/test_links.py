"""Reading the page's link: each argument as the server receives it -> what the page shows, and
what it says about the rest. Pure: no server, no database."""
from __future__ import annotations

import pytest

from dashboard.links import Link, PageLink, read_link

CITIES = ["All cities", "Phuket", "Paris", "São Paulo"]
TABS = {"marketplace": ("overview", "properties", "amenities", "demand"), "orders": ("orders", "today", "import"),
        "catalog": ("browse", "product", "style")}
CHOICES = {"workspace": lambda: ["marketplace", "orders", "catalog", "assistant", "system"],
           "city": lambda: CITIES, "range": lambda: ["last_month", "last_quarter", "last_year"],
           "type": lambda: ["All property types", "Villa", "Ski Resort"]}


def read(query: dict[str, list]) -> Link:
    return read_link({k: [v.encode() if isinstance(v, str) else v for v in vs] for k, vs in query.items()},
                     CHOICES, TABS, "marketplace")


@pytest.mark.parametrize("query, values", [
    ({}, {}),
    ({"workspace": ["orders"], "tab": ["today"]}, {"workspace": "orders", "tab": "today"}),
    ({"workspace": ["Orders"], "tab": ["TODAY"]}, {"workspace": "orders", "tab": "today"}),
    ({"tab": ["amenities"], "city": ["phuket"], "type": ["ski resort"]},
     {"tab": "amenities", "city": "Phuket", "type": "Ski Resort"}),
    ({"city": ["São Paulo"], "range": ["last_year"], "weeks": ["12"]},
     {"city": "São Paulo", "range": "last_year", "weeks": 12}),
    ({"workspace": ["orders"], "order": ["345"], "q": ["ana@example.com"]},
     {"workspace": "orders", "order": 345, "q": "ana@example.com"}),
    ({"workspace": ["catalog"], "product": ["10001"]}, {"workspace": "catalog", "product": 10001}),
    ({"workspace": ["orders"], "workspace_2": []}, {"workspace": "orders"}),
    ({"bokeh-session-id": ["abc"], "workspace": ["system"]}, {"workspace": "system"}),
    ({"workspace": ["orders", "orders"]}, {"workspace": "orders"}),
])
def test_good_links_are_read_and_silent(query, values):
    link = read({k: v for k, v in query.items() if v})
    assert link.values == values and link.messages == []


@pytest.mark.parametrize("query, says", [
    ({"workspace": ["nowhere"]}, "The link asks for workspace 'nowhere', which does not exist here"),
    ({"workspace": ["orders", "catalog"]}, "gives workspace more than once ('orders', 'catalog')"),
    ({"workspace": ["orders"], "tab": ["amenities"]}, "tab 'amenities', which does not exist here"),
    ({"workspace": ["assistant"], "tab": ["chat"]}, "tab 'chat', but assistant has no tabs"),
    ({"view": ["today"]}, "The link has 'view', which this app does not read (did you mean 'tab'?)"),
    ({"cty": ["Paris"]}, "(did you mean 'city'?)"),
    ({"city": ["<script>alert(1)</script>"]}, "city '<script>alert(1)</script>', which does not exist here"),
    ({"city": ["x" * 10_000]}, "city is 10,000 characters long (at most 200)"),
    ({"city": [""]}, "The link's city is empty"),
    ({"q": ["ana\x00"]}, "contains control or invisible characters"),
    ({"q": ["a\u200bb"]}, "contains control or invisible characters"),
    ({"order": ["1_0"]}, "order '1_0', which is not a whole number"),
    ({"order": ["١٢"]}, "which is not a whole number"),
    ({"order": ["-4"]}, "which is not a whole number"),
    ({"order": ["99999999999999999999"]}, "which is not a whole number"),
    ({"weeks": ["99"]}, "number of weeks '99', which is not a whole number from 2 to 52"),
    ({"product": ["0"]}, "product '0', which is not a whole number from 1"),
    ({"type": ["Castle"]}, "property type 'Castle', which does not exist here"),
    ({"range": ["forever"]}, "period 'forever', which does not exist here"),
    ({"city": [b"\xff\xfe"]}, "city '\N{REPLACEMENT CHARACTER}\N{REPLACEMENT CHARACTER}', which does not exist"),
])
def test_bad_links_are_named_and_the_default_shown(query, says):
    link = read(query)
    assert any(says in m for m in link.messages), link.messages
    assert len(link.messages) == 1
    assert list(query)[-1] not in link.values, "a value that was not understood is not used"


def test_a_long_bad_value_is_quoted_short():
    link = read({"city": ["y" * 150]})
    assert "'" + "y" * 60 + "…'" in link.messages[0] and len(link.messages[0]) < 200


def test_several_problems_each_get_a_sentence_and_the_good_rest_is_used():
    link = read({"workspace": ["orders"], "tab": ["nope"], "city": ["Atlantis"], "q": ["kim"], "x": ["1"]})
    assert link.values == {"workspace": "orders", "q": "kim"}
    assert len(link.messages) == 3


class Location:
    search = ""


class Thing:
    """A state object with parameters, as the workspaces have."""

    def __new__(cls):
        import param

        class State(param.Parameterized):
            tab = param.Selector(default="orders", objects=["orders", "today"])
            order = param.Integer(default=None, allow_None=True)
            search = param.String(default="")
        return State()


def test_the_address_bar_follows_what_the_page_shows():
    location, workspace = Location(), ["orders"]
    page = PageLink(read({"workspace": ["orders"], "tab": ["today"], "q": ["kim"]}), lambda: workspace[0], location)
    state = Thing()
    state.param.update(page.initial({"tab": "tab", "order": "order", "search": "q"}, "orders"))
    page.follow(state, {"tab": "tab", "order": "order", "search": "q"}, "orders")
    assert (state.tab, state.search) == ("today", "kim") and location.search == "?tab=today&q=kim"
    state.order = 345
    assert location.search == "?tab=today&order=345&q=kim"
    state.param.update(order=None, search="", tab="orders")
    assert location.search == "", "defaults are left out"
    workspace[0] = "catalog"
    state.tab = "today"
    page.workspace_changed("catalog")
    assert "tab" not in location.search, "a workspace's tab is in the link only while it is on screen"
