"""The route model moved down to ``lakehouse.routes`` (the storage service reads routes too).

Kept so code written against the old path still imports; new code imports ``lakehouse.routes``.
"""

from lakehouse.routes import (
    DEFAULT_FILE,
    DEFAULT_ROUTES,
    Evolution,
    Route,
    RoutesError,
    RoutesFile,
    identifier,
    load_routes,
    parse_routes,
    route_for,
    route_named,
    settings_routes,
)

__all__ = [
    "DEFAULT_FILE",
    "DEFAULT_ROUTES",
    "Evolution",
    "Route",
    "RoutesError",
    "RoutesFile",
    "identifier",
    "load_routes",
    "parse_routes",
    "route_for",
    "route_named",
    "settings_routes",
]
