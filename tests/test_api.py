"""The marketplace JSON API of a running app: the same figures as the dashboard, a 400 naming the
bad parameter for each kind of bad input, and a schemathesis run that finds no server error."""
from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from data.marketplace import Marketplace

from .conftest import app_role_database, default_tables
from .helpers import serve_demo_copy

pytestmark = [pytest.mark.slow]
DATABASE = "api_marketplace"


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("api"), pg, demo_template, DATABASE) as app:
        yield app


@pytest.fixture(scope="module")
def dashboard(pg, served) -> Marketplace:
    """The dashboard's own reads, on the same database."""
    db = app_role_database(pg, DATABASE)
    yield Marketplace(db, default_tables())
    db.dispose()


def get(served, path: str, **params) -> tuple[int, dict]:
    response = requests.get(served.url + path, params=params, timeout=20)
    assert response.headers["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def test_cities_types_and_investment_match_the_dashboard(served, dashboard):
    assert get(served, "/api/cities") == (200, {"cities": dashboard.cities()})
    assert get(served, "/api/property-types") == (200, {"propertyTypes": dashboard.property_types()})
    status, body = get(served, "/api/city-investment")
    expected = dashboard.city_investment()
    assert status == 200 and [r["city"] for r in body["data"]] == list(expected["city"])
    assert body["data"][0] == {k: (v if isinstance(v, str) else pytest.approx(v))
                               for k, v in expected.iloc[0].to_dict().items()}


@pytest.mark.parametrize("city", [None, "Phuket", "Agra"])
@pytest.mark.parametrize("date_range", ["last_month", "last_year"])
def test_the_funnel_matches_the_dashboard(served, dashboard, city, date_range):
    status, body = get(served, "/api/city-funnel", city=city, date_range=date_range)
    funnel = dashboard.funnel(city, date_range, full=False)
    assert status == 200 and body["city"] == (city or "All Cities")
    assert list(body["funnel"].values()) == [int(c) for c in funnel["count"]]


def test_properties_amenities_and_devices_match_the_dashboard(served, dashboard):
    status, body = get(served, "/api/properties", city="Phuket", limit="7")
    points = dashboard.property_points("Phuket", 7)
    assert status == 200 and [p["id"] for p in body["properties"]] == [str(i) for i in points["id"]]
    assert body["properties"][0]["performanceCategory"] == points.iloc[0]["performance_category"]
    status, body = get(served, "/api/amenities", city="Phuket", property_type="Summer Getaway")
    lift = dashboard.amenity_lift("Phuket", "Summer Getaway")
    assert [(a["name"], a["lift"], a["impactTier"]) for a in body["amenities"]] == \
        list(zip(lift["name"], lift["lift"], lift["impact_tier"]))
    status, body = get(served, "/api/amenities/top-by-city")
    top = dashboard.top_amenities_by_city(3)
    first = body["topAmenities"][0]
    assert [a["name"] for a in first["top3"]] == list(
        top[(top["city"] == first["city"]) & (top["property_type"] == first["propertyType"])]["name"])
    status, body = get(served, "/api/device-metrics", city="Phuket", weeks="8")
    devices = dashboard.device_funnel("Phuket", 8).set_index("device")
    assert body["deviceFunnel"]["mobile"]["viewers"] == devices.loc["mobile", "viewers"]
    assert len(body["weeklyTrends"]) == dashboard.weekly_device_rates("Phuket", 8)["week"].nunique()
    assert body["diagnosis"]["diagnosis"] == dashboard.device_diagnosis("Phuket")["diagnosis"]


@pytest.mark.parametrize("path, params, parameter", [
    ("/api/city-funnel", {"city": "Atlantis"}, "city"),
    ("/api/city-funnel", {"date_range": "last_decade"}, "date_range"),
    ("/api/properties", {"limit": "0"}, "limit"),
    ("/api/properties", {"limit": "1001"}, "limit"),
    ("/api/properties", {"limit": "ten"}, "limit"),
    ("/api/properties", {"limit": "1; DROP TABLE x"}, "limit"),
    ("/api/amenities", {"property_type": "Castle"}, "property_type"),
    ("/api/device-metrics", {"weeks": "53"}, "weeks"),
    ("/api/cities", {"city": "Phuket"}, "city"),                         # a parameter the endpoint does not take
    ("/api/city-funnel", {"cty": "Phuket"}, "cty"),                      # a misspelled one
    ("/api/properties", {"limit": ["5", "6"]}, "limit"),                 # given twice
    ("/api/properties", {"limit": "１２"}, "limit"),                     # digits, but not ASCII ones
    ("/api/city-funnel", {"city": ""}, "city"),                          # blank
    ("/api/city-funnel", {"city": " Phuket"}, "city"),                   # names are exact
])
def test_a_bad_parameter_is_a_400_that_names_it(served, path, params, parameter):
    status, body = get(served, path, **params)
    assert status == 400 and body["parameter"] == parameter and body["error"]


def test_an_unknown_endpoint_is_a_404_listing_the_endpoints(served):
    status, body = get(served, "/api/nothing-here")
    assert status == 404 and "/api/cities" in body["endpoints"]


@pytest.fixture(scope="module")
def api_schema(served):
    return schemathesis.openapi.from_url(served.url + "/api/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_meet_a_server_error(case):
    """Whatever schemathesis sends, the answer is documented, well-formed JSON and never a 500."""
    case.call_and_validate()
