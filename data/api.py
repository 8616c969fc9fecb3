"""The read-only JSON API of the marketplace dashboard, in the response shapes of the source system.

Every endpoint answers from the same `Marketplace` reads (and per-process caches) as the
dashboard, validates every query parameter (unknown ones too), and is described in the OpenAPI
document built from `ENDPOINTS`, so the code and its description cannot drift apart. The HTTP side
(routing, status codes, JSON) is `server/api.py`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .marketplace import DATE_RANGES, DEVICES, MAX_WEEKS, Marketplace

ALL = "all"
ALL_LABEL = "All Cities"
MAX_LIMIT = 1000


class BadParameter(Exception):
    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter, self.message = parameter, message


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    schema: dict


@dataclass(frozen=True)
class Endpoint:
    summary: str
    answer: Callable[["MarketplaceApi", dict], dict]
    parameters: tuple[Parameter, ...] = ()
    response: dict = field(default_factory=dict)


def _given(params: dict, name: str) -> str | None:
    """The parameter's value as sent (None when left out); a blank value is refused."""
    value = params.get(name)
    if value is not None and value == "":
        raise BadParameter(name, f"'{name}' is empty: give a value or leave the parameter out.")
    return value


class MarketplaceApi:
    def __init__(self, marketplace: Marketplace):
        self.m = marketplace

    def read(self, path: str, arguments: Mapping[str, list[str]]) -> dict:
        """The body for `path` (one of ENDPOINTS) with its query arguments, each given once and
        each one the endpoint takes; BadParameter names the first that is not."""
        endpoint = ENDPOINTS[path]
        allowed = {p.name for p in endpoint.parameters}
        for name, values in arguments.items():
            if name not in allowed:
                raise BadParameter(name, f"Unknown parameter '{name}'"
                                         + (f"; {path} takes {', '.join(sorted(allowed))}." if allowed else
                                            f"; {path} takes none."))
            if len(values) > 1:
                raise BadParameter(name, f"Give '{name}' once.")
        return endpoint.answer(self, {name: values[0] for name, values in arguments.items()})

    def openapi(self) -> dict:
        return openapi_document(self.m.cities(), self.m.property_types())

    # -- parameters -----------------------------------------------------------------------

    def _city(self, params: dict) -> str | None:
        city = _given(params, "city")
        if city is None or city == ALL:
            return None
        if city not in self.m.cities():
            raise BadParameter("city", f"There is no city called '{city}'; GET /api/cities lists them.")
        return city

    def _property_type(self, params: dict) -> str | None:
        value = _given(params, "property_type")
        if value is None or value == ALL:
            return None
        if value not in self.m.property_types():
            raise BadParameter("property_type", f"There is no property type called '{value}'; "
                                                "GET /api/property-types lists them.")
        return value

    @staticmethod
    def _integer(params: dict, name: str, default: int, low: int, high: int) -> int:
        raw = _given(params, name)
        if raw is None:
            return default
        try:
            if not re.fullmatch(r"-?[0-9]+", raw):         # not int(): it takes ' 7', '1_0' and '１２'
                raise ValueError(raw)
            value = int(raw)
        except ValueError:
            raise BadParameter(name, f"'{name}' must be a whole number from {low} to {high}.") from None
        if not low <= value <= high:
            raise BadParameter(name, f"'{name}' must be from {low} to {high}.")
        return value

    # -- endpoints ------------------------------------------------------------------------

    def cities(self, params: dict) -> dict:
        return {"cities": self.m.cities()}

    def property_types(self, params: dict) -> dict:
        return {"propertyTypes": self.m.property_types()}

    def city_investment(self, params: dict) -> dict:
        return {"data": self.m.city_investment().to_dict("records")}

    def city_funnel(self, params: dict) -> dict:
        city = self._city(params)
        date_range = _given(params, "date_range") or "last_quarter"
        if date_range not in DATE_RANGES:
            raise BadParameter("date_range", f"'{date_range}' is not a date range; use {', '.join(DATE_RANGES)}.")
        funnel = self.m.funnel(city, date_range, full=False)
        counts = dict(zip(funnel["stage"], funnel["count"]))
        return {"city": city or ALL_LABEL, "date_range": date_range,
                "funnel": {"viewers": int(counts["viewers"]), "bookers": int(counts["initiated_bookers"]),
                           "completed": int(counts["completers"])}}

    def properties(self, params: dict) -> dict:
        city = self._city(params)
        limit = self._integer(params, "limit", 100, 1, MAX_LIMIT)
        frame = self.m.property_points(city, limit)
        return {"city": city or ALL_LABEL, "properties": [
            {"id": str(r["id"]), "name": r["name"], "city": r["city"], "propertyType": r["property_type"],
             "views": int(r["views"]), "bookings": int(r["bookings"]), "conversion": float(r["conversion"]),
             "failRate": float(r["fail_rate"]), "revenue": float(r["revenue"]), "cancelRate": float(r["cancel_rate"]),
             "performanceCategory": r["performance_category"]} for r in frame.to_dict("records")]}

    def amenities(self, params: dict) -> dict:
        city, property_type = self._city(params), self._property_type(params)
        frame = self.m.amenity_lift(city, property_type)
        return {"city": city or ALL_LABEL, "propertyType": property_type or "All Property Types",
                "amenities": [{"name": r["name"], "lift": float(r["lift"]), "impactTier": r["impact_tier"]}
                              for r in frame.to_dict("records")]}

    def top_amenities(self, params: dict) -> dict:
        frame = self.m.top_amenities_by_city(3)
        grouped = []
        for (city, property_type), rows in frame.groupby(["city", "property_type"], sort=True):
            grouped.append({"city": city, "propertyType": property_type, "top3": [
                {"name": r["name"], "lift": float(r["lift"]), "rank": int(r["rank"])}
                for r in rows.sort_values("rank").to_dict("records")]})
        return {"topAmenities": grouped}

    def device_metrics(self, params: dict) -> dict:
        city = self._city(params)
        weeks = self._integer(params, "weeks", 6, 1, MAX_WEEKS)
        funnel = self.m.device_funnel(city, weeks)
        weekly = self.m.weekly_device_rates(city, weeks)
        trends = []
        for week, rows in weekly.groupby("week", sort=True):
            rates = dict(zip(rows["device"], rows["rate"]))
            trends.append({"week": str(week), **{d: _number(rates.get(d)) for d in DEVICES}})
        diagnosis = self.m.device_diagnosis(city) if city else None
        return {"city": city or ALL_LABEL, "weeks": weeks,
                "deviceFunnel": {r["device"]: {"viewers": int(r["viewers"]), "bookers": int(r["bookers"]),
                                               "completed": int(r["completed"])} for r in funnel.to_dict("records")},
                "weeklyTrends": trends,
                "diagnosis": None if diagnosis is None else {
                    "deviceGap": diagnosis["device_gap"], "diagnosis": diagnosis["diagnosis"],
                    "mobileTrend": diagnosis["mobile_trend"]}}


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


# -- the endpoints and their OpenAPI description ---------------------------------------------

_CITY = Parameter("city", "A city from /api/cities, or 'all' (the default) for every city.", {"type": "string"})
_STRING_LIST = {"type": "array", "items": {"type": "string"}}
_NUMBER = {"type": "number"}
_INTEGER = {"type": "integer"}
_FUNNEL = {"type": "object", "required": ["viewers", "bookers", "completed"],
           "properties": {"viewers": _INTEGER, "bookers": _INTEGER, "completed": _INTEGER}}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


ENDPOINTS: dict[str, Endpoint] = {
    "/api/cities": Endpoint("Every city, for the city filter.", MarketplaceApi.cities,
                            response=_object({"cities": _STRING_LIST})),
    "/api/property-types": Endpoint("Every property type, for the amenity filter.", MarketplaceApi.property_types,
                                    response=_object({"propertyTypes": _STRING_LIST})),
    "/api/city-investment": Endpoint(
        "Demand, conversion, revenue and quadrant per city (the investment priority matrix).",
        MarketplaceApi.city_investment,
        response=_object({"data": {"type": "array", "items": _object(
            {"city": {"type": "string"}, "demand": _INTEGER, "conversion": _NUMBER, "revenue": _NUMBER,
             "quadrant": {"type": "string"}})}})),
    "/api/city-funnel": Endpoint(
        "Viewers, bookers and completed bookings of a city (or all) over a recent period.",
        MarketplaceApi.city_funnel,
        (_CITY, Parameter("date_range", "last_month, last_quarter (default) or last_year.",
                          {"type": "string", "enum": list(DATE_RANGES)})),
        _object({"city": {"type": "string"}, "date_range": {"type": "string"}, "funnel": _FUNNEL})),
    "/api/properties": Endpoint(
        "The most viewed properties of a city (or all), with their performance.", MarketplaceApi.properties,
        (_CITY, Parameter("limit", f"How many, 1 to {MAX_LIMIT} (default 100).",
                          {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})),
        _object({"city": {"type": "string"}, "properties": {"type": "array", "items": _object({
            "id": {"type": "string"}, "name": {"type": "string"}, "city": {"type": "string"},
            "propertyType": {"type": "string"}, "views": _INTEGER, "bookings": _INTEGER, "conversion": _NUMBER,
            "failRate": _NUMBER, "revenue": _NUMBER, "cancelRate": _NUMBER,
            "performanceCategory": {"type": "string", "enum": ["promote", "at_risk", "intervention"]}})}})),
    "/api/amenities": Endpoint(
        "Confirmation lift by amenity for a city and property type (averaged over 'all').",
        MarketplaceApi.amenities,
        (_CITY, Parameter("property_type", "A type from /api/property-types, or 'all' (the default).",
                          {"type": "string"})),
        _object({"city": {"type": "string"}, "propertyType": {"type": "string"}, "amenities": {
            "type": "array", "items": _object({"name": {"type": "string"}, "lift": _NUMBER, "impactTier": {
                "type": "string", "enum": ["must_have", "differentiator", "low_impact"]}})}})),
    "/api/amenities/top-by-city": Endpoint(
        "The three amenities with the highest lift in every city and property type.", MarketplaceApi.top_amenities,
        response=_object({"topAmenities": {"type": "array", "items": _object({
            "city": {"type": "string"}, "propertyType": {"type": "string"}, "top3": {"type": "array", "items":
                _object({"name": {"type": "string"}, "lift": _NUMBER, "rank": _INTEGER})}})}})),
    "/api/device-metrics": Endpoint(
        "Device funnels, weekly completion rates per device and the device diagnosis of a city.",
        MarketplaceApi.device_metrics,
        (_CITY, Parameter("weeks", f"Recent weeks, 1 to {MAX_WEEKS} (default 6).",
                          {"type": "integer", "minimum": 1, "maximum": MAX_WEEKS})),
        _object({"city": {"type": "string"}, "weeks": _INTEGER,
                 "deviceFunnel": _object({d: _FUNNEL for d in DEVICES}),
                 "weeklyTrends": {"type": "array", "items": _object(
                     {"week": {"type": "string"}, **{d: {"type": ["number", "null"]} for d in DEVICES}})},
                 "diagnosis": {"type": ["object", "null"]}})),
}

_ERROR = _object({"error": {"type": "string"}, "parameter": {"type": "string"}}, ["error"])


def openapi_document(cities: list[str] | None = None, property_types: list[str] | None = None) -> dict:
    """OpenAPI 3.1 description of every endpoint, its parameters and its answers; given the cities
    and property types, those parameters list their valid values."""
    choices = {"city": cities, "property_type": property_types}

    def schema(parameter: Parameter) -> dict:
        values = choices.get(parameter.name)
        return {"type": "string", "enum": [ALL, *values]} if values else parameter.schema

    paths = {}
    for path, endpoint in ENDPOINTS.items():
        responses = {"200": {"description": "OK", "content": {"application/json": {"schema": endpoint.response}}}}
        if endpoint.parameters:
            responses["400"] = {"description": "A parameter is not valid (the body names it).",
                                "content": {"application/json": {"schema": _ERROR}}}
        paths[path] = {"get": {
            "summary": endpoint.summary, "operationId": path.strip("/").replace("/", "_").replace("-", "_"),
            "parameters": [{"name": p.name, "in": "query", "required": False, "description": p.description,
                            "schema": schema(p)} for p in endpoint.parameters],
            "responses": responses}}
    return {"openapi": "3.1.0",
            "info": {"title": "Lakebase Panel marketplace API", "version": "1.0",
                     "description": "Read-only marketplace figures, the same the dashboard shows."},
            "paths": paths}

