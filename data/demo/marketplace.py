"""Marketplace gold tables: 80 cities, a year of daily funnels, 18,000 properties, amenities, devices.

Derived tables are computed from the generated base data, as the gold layer would be, so the
numbers agree with each other: city_investment sums city_funnel, device viewers split the
city's weekly viewers, amenity_city_top ranks amenity_lift, device_diagnosis reads the last
six weeks of device_funnel.
"""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

PROPERTY_TYPES = ("Urban Year-Round", "Summer Getaway", "Historical Place", "Ski Resort")
_U, _S, _H, _K = PROPERTY_TYPES

# (city, country, main property type)
CITIES: tuple[tuple[str, str, str], ...] = (
    ("Abu Dhabi", "United Arab Emirates", _U), ("Agra", "India", _H), ("Amalfi", "Italy", _S),
    ("Amsterdam", "Netherlands", _U), ("Aspen", "United States", _K), ("Athens", "Greece", _H),
    ("Bali", "Indonesia", _S), ("Bangkok", "Thailand", _U), ("Barcelona", "Spain", _U),
    ("Berlin", "Germany", _U), ("Boston", "United States", _U), ("Budapest", "Hungary", _H),
    ("Buenos Aires", "Argentina", _U), ("Cairo", "Egypt", _H), ("Cancun", "Mexico", _S),
    ("Cape Town", "South Africa", _S), ("Chamonix", "France", _K), ("Chiang Mai", "Thailand", _H),
    ("Copenhagen", "Denmark", _U), ("Cusco", "Peru", _H), ("Dubai", "United Arab Emirates", _U),
    ("Dubrovnik", "Croatia", _S), ("Edinburgh", "United Kingdom", _H), ("Florence", "Italy", _H),
    ("Hanoi", "Vietnam", _H), ("Havana", "Cuba", _H), ("Hong Kong", "China", _U),
    ("Honolulu", "United States", _S), ("Innsbruck", "Austria", _K), ("Istanbul", "Turkey", _H),
    ("Jaipur", "India", _H), ("Kyoto", "Japan", _H), ("Lisbon", "Portugal", _U),
    ("London", "United Kingdom", _U), ("Los Angeles", "United States", _U), ("Madrid", "Spain", _U),
    ("Malaga", "Spain", _S), ("Maldives", "Maldives", _S), ("Marrakech", "Morocco", _H),
    ("Melbourne", "Australia", _U), ("Mexico City", "Mexico", _U), ("Miami", "United States", _S),
    ("Milan", "Italy", _U), ("Montreal", "Canada", _U), ("Munich", "Germany", _U),
    ("Mykonos", "Greece", _S), ("Naples", "Italy", _H), ("New York", "United States", _U),
    ("Nice", "France", _S), ("Niseko", "Japan", _K), ("Oaxaca", "Mexico", _H),
    ("Orlando", "United States", _S), ("Paris", "France", _U), ("Petra", "Jordan", _H),
    ("Phuket", "Thailand", _S), ("Porto", "Portugal", _H), ("Prague", "Czech Republic", _H),
    ("Queenstown", "New Zealand", _K), ("Reykjavik", "Iceland", _U), ("Rio de Janeiro", "Brazil", _S),
    ("Rome", "Italy", _H), ("Salzburg", "Austria", _H), ("San Francisco", "United States", _U),
    ("Santorini", "Greece", _S), ("Seoul", "South Korea", _U), ("Seville", "Spain", _H),
    ("Singapore", "Singapore", _U), ("St. Moritz", "Switzerland", _K), ("Stockholm", "Sweden", _U),
    ("Sydney", "Australia", _U), ("Tokyo", "Japan", _U), ("Toronto", "Canada", _U),
    ("Tulum", "Mexico", _S), ("Valletta", "Malta", _H), ("Vancouver", "Canada", _U),
    ("Venice", "Italy", _H), ("Vienna", "Austria", _H), ("Whistler", "Canada", _K),
    ("Zermatt", "Switzerland", _K), ("Zanzibar", "Tanzania", _S),
)

AMENITIES = ("Wi-Fi", "Pool", "Air Conditioning", "Kitchen", "Free Parking", "Breakfast Included",
             "Hot Tub", "Fireplace", "Ski Storage", "Sea View", "Gym", "Spa", "Pet Friendly",
             "Washer", "Workspace", "Balcony", "Garden", "BBQ Grill", "Wine Cellar", "Fire Pit",
             "Terrace", "EV Charger", "Airport Shuttle", "Concierge", "Sauna")

# Base confirmation lift (percentage points) of an amenity, by property type.
_BASE_LIFT = {
    _U: {"Wi-Fi": 11, "Workspace": 9, "Air Conditioning": 7, "Washer": 5, "Gym": 4.5, "Kitchen": 4,
         "Concierge": 3.5, "Airport Shuttle": 3, "EV Charger": 2.5, "Terrace": 2.2},
    _S: {"Pool": 12.5, "Sea View": 10, "Air Conditioning": 9, "Wi-Fi": 8.5, "Balcony": 6,
         "BBQ Grill": 4.5, "Terrace": 4.2, "Garden": 3.8, "Hot Tub": 3.5, "Breakfast Included": 3},
    _H: {"Wi-Fi": 9.5, "Breakfast Included": 8.5, "Air Conditioning": 7.5, "Terrace": 6,
         "Wine Cellar": 4.4, "Garden": 4, "Concierge": 3.4, "Fire Pit": 3.4, "Free Parking": 3},
    _K: {"Ski Storage": 13, "Fireplace": 11, "Hot Tub": 9.5, "Sauna": 8.5, "Wi-Fi": 7,
         "Free Parking": 5.5, "Spa": 4.5, "Fire Pit": 4, "Kitchen": 3.2, "Washer": 2.5},
}

DEVICES = ("desktop", "mobile", "tablet")
_DEVICE_SHARE = np.array([0.42, 0.36, 0.22])
_DEVICE_INITIATE = np.array([0.30, 0.27, 0.28])   # viewers -> initiated bookers
_DEVICE_COMPLETE = np.array([0.70, 0.68, 0.66])   # initiated -> completers, before the city's mobile penalty

_NAME_STYLES = {
    _U: ("Loft", "Studio", "Apartment", "Suite", "Townhouse", "Penthouse"),
    _S: ("Villa", "Beach House", "Bungalow", "Cottage", "Retreat", "Cabana"),
    _H: ("Heritage Hotel", "Palazzo", "Old Town Flat", "Riad", "Manor", "Guesthouse"),
    _K: ("Chalet", "Lodge", "Cabin", "Mountain Suite", "Ski Apartment", "Alpine House"),
}
_NAME_ADJECTIVES = ("Cosy", "Sunny", "Grand", "Quiet", "Modern", "Classic", "Charming", "Bright",
                    "Elegant", "Rustic", "Stylish", "Spacious", "Hidden", "Royal", "Little")

QUADRANTS = ("Protect & Expand", "Fix Conversion", "Grow Demand", "Maintain")

# Two anomalies worth finding, planted so that the insight watcher has real news in the demo: a
# checkout problem in one busy city over the last 7 days, and mobile completion falling in every
# city over the last two weeks (an app release, say).
PLANTED_CONVERSION_KEPT = 0.25       # share of the city's completers left in its last 7 days
PLANTED_MOBILE_KEPT = 0.5            # share of mobile completion left in the last two weeks


def planted_city(profile: pd.DataFrame) -> str:
    """The city with the most expected completers after Phuket (the seed's example stays as it is)."""
    expected = (profile["daily_viewers"] * profile["conversion"]).where(profile["city"] != "Phuket")
    return str(profile.loc[expected.idxmax(), "city"])


def planted_anomaly_city(seed: int = 0) -> str:
    """The city `generate(seed=seed)` plants its conversion drop in."""
    return planted_city(_city_profile(np.random.default_rng(seed)))


def _city_profile(rng: np.random.Generator) -> pd.DataFrame:
    n = len(CITIES)
    popularity = np.sort(rng.lognormal(0, 0.75, n))[::-1]
    order = rng.permutation(n)
    # Phuket is the busiest, as in the seed's examples; the rest are shuffled.
    names = [c[0] for c in CITIES]
    phuket = names.index("Phuket")
    order = np.concatenate([[phuket], order[order != phuket]])
    weights = np.empty(n)
    weights[order] = popularity
    profile = pd.DataFrame(CITIES, columns=["city", "country", "main_type"])
    profile["daily_viewers"] = weights / weights.max() * 42.0       # Phuket: ~15k viewers a year
    profile["conversion"] = rng.uniform(0.05, 0.17, n)               # completers / viewers
    profile.loc[phuket, "conversion"] = 0.158
    profile["booking_value"] = rng.uniform(160, 520, n).round(2)
    profile.loc[phuket, "booking_value"] = 398.5
    profile["mobile_penalty"] = rng.choice([0.6, 0.8, 0.92, 1.05], n, p=[0.15, 0.25, 0.3, 0.3])
    profile["mobile_slope"] = rng.normal(0, 0.01, n)                 # weekly drift of mobile completion
    return profile


def _seasonality(days: pd.DatetimeIndex, main_type: str) -> np.ndarray:
    doy = days.day_of_year.to_numpy()
    peak = {_S: 196, _K: 30, _H: 120, _U: 150}[main_type]
    amplitude = {_S: 0.45, _K: 0.55, _H: 0.2, _U: 0.12}[main_type]
    weekly = np.where(days.day_of_week.to_numpy() >= 5, 1.15, 0.94)
    return (1 + amplitude * np.cos(2 * np.pi * (doy - peak) / 365.25)) * weekly


def city_funnel(profile: pd.DataFrame, today: date, rng: np.random.Generator, days: int = 365) -> pd.DataFrame:
    planted = planted_city(profile)
    dates = pd.date_range(end=pd.Timestamp(today), periods=days, freq="D")
    frames = []
    for row in profile.itertuples():
        lam = row.daily_viewers * _seasonality(dates, row.main_type)
        viewers = rng.poisson(lam)
        clickers = rng.binomial(viewers, 0.75)
        searchers = rng.binomial(clickers, 0.70)
        filterers = rng.binomial(searchers, 0.80)
        initiated = rng.binomial(filterers, 0.67)
        # Completion after initiation carries the city's conversion (0.281 = share reaching initiation).
        after = min(row.conversion / 0.281, 0.95)
        confirmed = rng.binomial(initiated, min(np.sqrt(after) * 1.05, 0.99))
        completers = rng.binomial(confirmed, min(after / min(np.sqrt(after) * 1.05, 0.99), 1.0))
        if row.city == planted:
            completers[-7:] = rng.binomial(completers[-7:], PLANTED_CONVERSION_KEPT)
        frames.append(pd.DataFrame({
            "city": row.city, "event_date": dates.date, "viewers": viewers, "clickers": clickers,
            "searchers": searchers, "filterers": filterers, "initiated_bookers": initiated,
            "confirmed_bookers": confirmed, "completers": completers}))
    return pd.concat(frames, ignore_index=True)


def _quadrant(high_demand: bool, high_conversion: bool) -> str:
    return QUADRANTS[(0 if high_conversion else 1) if high_demand else (2 if high_conversion else 3)]


def city_investment(profile: pd.DataFrame, funnel: pd.DataFrame) -> pd.DataFrame:
    totals = funnel.groupby("city", sort=True)[["viewers", "initiated_bookers", "completers"]].sum()
    out = profile.set_index("city")[["country", "booking_value"]].join(totals).reset_index()
    out["conversion_rate"] = (out["completers"] / out["viewers"].clip(lower=1) * 100).round(2)
    out["estimated_revenue"] = (out["completers"] * out["booking_value"]).round(2)
    high_demand = out["viewers"] >= out["viewers"].median()
    high_conversion = out["conversion_rate"] >= out["conversion_rate"].median()
    out["quadrant"] = [_quadrant(d, c) for d, c in zip(high_demand, high_conversion)]
    return out.rename(columns={"viewers": "total_viewers", "initiated_bookers": "total_bookers",
                               "completers": "total_completers"})[
        ["city", "country", "total_viewers", "total_bookers", "total_completers", "conversion_rate",
         "estimated_revenue", "quadrant"]]


def performance_category(conversion: np.ndarray, fail_rate: np.ndarray) -> np.ndarray:
    """Seed 000's rule: intervention below 5% or failing payments above 15%; promote from 10%."""
    return np.where((conversion < 5) | (fail_rate > 15), "intervention",
                    np.where(conversion < 10, "at_risk", "promote"))


def property_performance(profile: pd.DataFrame, rng: np.random.Generator, total: int = 18_000) -> pd.DataFrame:
    share = profile["daily_viewers"].to_numpy() ** 0.7
    counts = np.maximum(20, np.round(share / share.sum() * total)).astype(int)
    counts[np.argmax(counts)] -= counts.sum() - total
    frames, next_id = [], 1000
    for row, n in zip(profile.itertuples(), counts):
        others = [t for t in PROPERTY_TYPES if t != row.main_type]
        types = rng.choice([row.main_type, *others], n, p=[0.55, 0.15, 0.15, 0.15])
        views = np.maximum(1, rng.lognormal(3.9, 1.1, n).astype(int))
        conversion = np.clip(rng.normal(row.conversion * 100, 4.5, n), 0, 60)
        bookings = np.minimum(views, rng.binomial(views, conversion / 100))
        completion = np.round(bookings / views * 100, 2)
        fail_rate = np.round(np.where(rng.random(n) < 0.1, rng.uniform(15.5, 35, n), rng.uniform(0, 12, n)), 2)
        nights = rng.uniform(2, 6, n)
        revenue = np.round(bookings * row.booking_value / 3.2 * nights, 2)
        names = [f"{rng.choice(_NAME_ADJECTIVES)} {rng.choice(_NAME_STYLES[t])} in {row.city}" for t in types]
        frames.append(pd.DataFrame({
            "property_id": [str(i) for i in range(next_id, next_id + n)], "property_name": names,
            "city": row.city, "property_type": types, "views": views, "completed_bookings": bookings,
            "completion_rate": completion, "payment_fail_rate": fail_rate,
            "cancel_rate": np.round(rng.beta(2, 14, n) * 100, 2), "total_revenue": revenue,
            "performance_category": performance_category(completion, fail_rate)}))
        next_id += n
    return pd.concat(frames, ignore_index=True)


def impact_tier(lift: np.ndarray) -> np.ndarray:
    """Seed 000's thresholds: above 8 points must-have, 4-8 differentiator, below 4 low impact."""
    return np.where(lift > 8, "must_have", np.where(lift >= 4, "differentiator", "low_impact"))


def amenity_lift(profile: pd.DataFrame, properties: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    per_type = properties.groupby(["city", "property_type"]).size()
    rows = []
    for row in profile.itertuples():
        base_rate = rng.uniform(28, 55)
        for ptype in PROPERTY_TYPES:
            listings = int(per_type.get((row.city, ptype), 0)) + 8
            for amenity in AMENITIES:
                lift = _BASE_LIFT[ptype].get(amenity, 1.0) + rng.normal(0, 1.4)
                share_with = float(np.clip(rng.normal(0.45, 0.15), 0.08, 0.9))
                with_n = max(1, int(round(listings * share_with)))
                rate_without = float(np.clip(base_rate + rng.normal(0, 3), 5, 85))
                rows.append((row.city, ptype, amenity, with_n, max(1, listings - with_n),
                             round(rate_without + lift, 2), round(rate_without, 2)))
    out = pd.DataFrame(rows, columns=["city", "property_type", "amenity_name", "listings_with",
                                      "listings_without", "rate_with", "rate_without"])
    out["confirmation_lift"] = (out["rate_with"] - out["rate_without"]).round(2)
    out["impact_tier"] = impact_tier(out["confirmation_lift"].to_numpy())
    return out


def amenity_city_top(properties: pd.DataFrame, lift: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Per city, the highest-lift amenities for its most common property type."""
    counts = properties.groupby(["city", "property_type"]).size().rename("n").reset_index()
    main = counts.sort_values(["city", "n", "property_type"], ascending=[True, False, True]) \
                 .drop_duplicates("city")[["city", "property_type"]]
    ranked = lift.merge(main, on=["city", "property_type"]) \
                 .sort_values(["city", "confirmation_lift", "amenity_name"], ascending=[True, False, True])
    ranked["rank"] = ranked.groupby("city").cumcount() + 1
    return ranked[ranked["rank"] <= top][["city", "property_type", "amenity_name", "confirmation_lift", "rank"]] \
        .reset_index(drop=True)


def device_funnel(profile: pd.DataFrame, funnel: pd.DataFrame, rng: np.random.Generator,
                  weeks: int = 52) -> pd.DataFrame:
    """Weekly funnel per device; the devices' viewers add up to the city's viewers that week."""
    daily = funnel[["city", "event_date", "viewers"]].copy()
    stamps = pd.to_datetime(daily["event_date"])
    daily["week_start"] = (stamps - pd.to_timedelta(stamps.dt.day_of_week, unit="D")).dt.date
    weekly = daily.groupby(["city", "week_start"], sort=True)["viewers"].sum().reset_index()
    keep = sorted(weekly["week_start"].unique())[-weeks:]
    weekly = weekly[weekly["week_start"].isin(keep)]
    by_city = profile.set_index("city")
    rows = []
    for city, group in weekly.groupby("city", sort=True):
        penalty, slope = by_city.loc[city, "mobile_penalty"], by_city.loc[city, "mobile_slope"]
        for i, (week, viewers) in enumerate(zip(group["week_start"], group["viewers"])):
            split = rng.multinomial(viewers, _DEVICE_SHARE)
            mobile_factor = np.clip(penalty + slope * (i - len(group)), 0.3, 1.1)
            if i >= len(group) - 2:
                mobile_factor *= PLANTED_MOBILE_KEPT
            complete = _DEVICE_COMPLETE * np.array([1.0, mobile_factor, 1.0])
            initiated = rng.binomial(split, _DEVICE_INITIATE)
            completers = rng.binomial(initiated, np.clip(complete, 0, 0.99))
            for d, device in enumerate(DEVICES):
                rows.append((city, week, device, int(split[d]), int(initiated[d]), int(completers[d])))
    out = pd.DataFrame(rows, columns=["city", "week_start", "device", "viewers", "initiated_bookers", "completers"])
    out["completion_rate"] = (out["completers"] / out["viewers"].clip(lower=1) * 100).round(2)
    return out


def diagnose(rates: dict[str, float], mobile_weekly: np.ndarray) -> tuple[float, str, str]:
    """Device gap (% of the desktop rate that mobile loses), its diagnosis and the mobile trend."""
    gap = 0.0 if rates["desktop"] <= 0 else (rates["desktop"] - rates["mobile"]) / rates["desktop"] * 100
    diagnosis = "likely_ux_issue" if gap >= 25 else "monitor" if gap >= 10 else "healthy"
    slope = np.polyfit(np.arange(len(mobile_weekly)), mobile_weekly, 1)[0] if len(mobile_weekly) > 1 else 0.0
    trend = "improving" if slope > 0.15 else "declining" if slope < -0.15 else "stable"
    return round(gap, 2), diagnosis, trend


def device_diagnosis(devices: pd.DataFrame, weeks: int = 6) -> pd.DataFrame:
    recent_weeks = sorted(devices["week_start"].unique())[-weeks:]
    recent = devices[devices["week_start"].isin(recent_weeks)]
    rows = []
    for city, group in recent.groupby("city", sort=True):
        sums = group.groupby("device")[["viewers", "completers"]].sum()
        rates = {d: float(sums.loc[d, "completers"] / max(sums.loc[d, "viewers"], 1) * 100) for d in DEVICES}
        mobile = group[group["device"] == "mobile"].sort_values("week_start")
        weekly = (mobile["completers"] / mobile["viewers"].clip(lower=1) * 100).to_numpy()
        gap, diagnosis, trend = diagnose(rates, weekly)
        rows.append((city, round(rates["desktop"], 2), round(rates["mobile"], 2), round(rates["tablet"], 2),
                     gap, diagnosis, trend))
    return pd.DataFrame(rows, columns=["city", "desktop_rate", "mobile_rate", "tablet_rate", "device_gap_pct",
                                       "diagnosis", "mobile_trend"])


def generate(today: date, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    profile = _city_profile(rng)
    funnel = city_funnel(profile, today, rng)
    properties = property_performance(profile, rng)
    lift = amenity_lift(profile, properties, rng)
    devices = device_funnel(profile, funnel, rng)
    return {
        "city_investment": city_investment(profile, funnel),
        "city_funnel": funnel,
        "property_performance": properties,
        "amenity_lift": lift,
        "amenity_city_top": amenity_city_top(properties, lift),
        "device_funnel": devices,
        "device_diagnosis": device_diagnosis(devices),
    }


def last_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())
