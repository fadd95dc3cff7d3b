"""Generated sample data for the demo buckets (``lakewire demo``, the notebooks, the tests).

The generators are seeded and need no network, so a new user, a test and a notebook all see
the same rows. No public data package for these domains is locked, so the values are made up
with realistic fields and relations: CO2 per person grows with GDP per person (the relation the
example pipeline fits), AIS positions follow each vessel's course and speed over ground.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

CO2_YEARS = range(2000, 2024)
AIS_START = datetime(2024, 5, 1, tzinfo=UTC)
# The exponent the CO2 generator uses for CO2 per person against GDP per person (log-log), so
# a fit on the sample has a known answer to be checked against.
CO2_GDP_ELASTICITY = 0.6


@dataclass(frozen=True)
class _Country:
    iso_code: str
    name: str
    population_m: float  # in 2000
    gdp_per_capita: float  # USD, in 2000
    growth: float  # yearly GDP-per-person growth


_COUNTRIES = (
    _Country("USA", "United States", 282.0, 36_300, 0.012),
    _Country("DEU", "Germany", 82.2, 23_600, 0.011),
    _Country("FRA", "France", 60.9, 22_400, 0.009),
    _Country("NOR", "Norway", 4.5, 38_000, 0.010),
    _Country("CHN", "China", 1_262.6, 960, 0.080),
    _Country("IND", "India", 1_056.6, 440, 0.055),
    _Country("BRA", "Brazil", 175.9, 3_750, 0.015),
    _Country("NGA", "Nigeria", 122.3, 570, 0.025),
    _Country("JPN", "Japan", 126.8, 39_200, 0.006),
    _Country("IDN", "Indonesia", 214.1, 780, 0.040),
    _Country("ZAF", "South Africa", 44.9, 3_030, 0.012),
    _Country("MEX", "Mexico", 98.9, 7_160, 0.008),
)


def co2_emissions(seed: int = 13) -> pl.DataFrame:
    """Yearly emissions per country as an OWID-style export, with what real exports carry too:
    a ``World`` aggregate row per year (no iso_code), some missing values and duplicate rows."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for year in CO2_YEARS:
        t = year - CO2_YEARS.start
        world = 0.0
        for c in _COUNTRIES:
            population = c.population_m * 1e6 * (1.0 + 0.008 * t)
            gdp_pc = c.gdp_per_capita * (1.0 + c.growth) ** t * math.exp(rng.gauss(0, 0.03))
            co2_pc = 0.012 * gdp_pc**CO2_GDP_ELASTICITY * math.exp(rng.gauss(0, 0.15))
            co2_mt = co2_pc * population / 1e6
            world += co2_mt
            rows.append(
                {
                    "country": c.name,
                    "year": year,
                    "iso_code": c.iso_code,
                    "population": round(population),
                    "gdp": round(gdp_pc * population),
                    "co2": round(co2_mt, 3),
                    "co2_per_capita": round(co2_pc, 4),
                }
            )
        rows.append(
            {
                "country": "World",
                "year": year,
                "iso_code": None,
                "population": None,
                "gdp": None,
                "co2": round(world, 3),
                "co2_per_capita": None,
            }
        )
    frame = pl.DataFrame(rows, orient="row", infer_schema_length=None)
    # Gaps and repeats, as a merged export has them: the pipeline's cleaning step drops them.
    gaps = pl.Series([rng.random() < 0.03 for _ in range(frame.height)])
    frame = frame.with_columns(pl.when(gaps).then(None).otherwise(pl.col("co2")).alias("co2"))
    return pl.concat([frame, frame.slice(5, 4)])


def ais_positions(vessels: int = 8, reports: int = 60, seed: int = 13) -> pl.DataFrame:
    """AIS position reports: MMSI, timestamp, lat/lon, SOG (knots), COG, heading, ship type,
    one report a minute per vessel along its course in the North Sea."""
    rng = random.Random(seed)
    ship_types = (30, 60, 70, 70, 80)  # fishing, passenger, cargo, cargo, tanker (AIS codes)
    rows: list[dict[str, object]] = []
    for v in range(vessels):
        mmsi = 257_000_000 + rng.randrange(1_000_000)
        lat, lon = 56.0 + rng.uniform(-2, 2), 3.0 + rng.uniform(-2, 2)
        cog = rng.uniform(0, 360)
        sog = rng.uniform(6, 16) if ship_types[v % len(ship_types)] != 30 else rng.uniform(2, 6)
        for i in range(reports):
            cog = (cog + rng.gauss(0, 2)) % 360
            nm = sog / 60.0  # nautical miles in a minute
            lat += nm / 60.0 * math.cos(math.radians(cog))
            lon += nm / 60.0 * math.sin(math.radians(cog)) / math.cos(math.radians(lat))
            rows.append(
                {
                    "mmsi": mmsi,
                    "timestamp": AIS_START + timedelta(minutes=i, seconds=rng.randrange(60)),
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "sog": round(sog + rng.gauss(0, 0.3), 1),
                    "cog": round(cog, 1),
                    "heading": round(cog + rng.gauss(0, 3)) % 360,
                    "ship_type": ship_types[v % len(ship_types)],
                }
            )
    return pl.DataFrame(rows, orient="row")


def sensor_readings(sensors: int = 5, hours: int = 48, seed: int = 13) -> pl.DataFrame:
    """Hourly temperature and humidity per sensor, with a daily cycle."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for s in range(sensors):
        base = rng.uniform(12, 20)
        for h in range(hours):
            temperature = base + 5 * math.sin(2 * math.pi * (h - 9) / 24) + rng.gauss(0, 0.5)
            rows.append(
                {
                    "sensor_id": f"sensor-{s + 1:02d}",
                    "timestamp": AIS_START + timedelta(hours=h),
                    "temperature_c": round(temperature, 2),
                    "humidity_pct": round(min(100.0, max(0.0, 70 - 2 * (temperature - base))), 1),
                }
            )
    return pl.DataFrame(rows, orient="row")
