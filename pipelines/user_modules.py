"""Users' own pipeline modules, loaded into the platform's code location by name.

Listing a module in ``LAKEWIRE_PIPELINE_MODULES`` is all it takes (docs/pipelines.md): its
assets then run with the platform's resources (``lakewire``, the Object Storage IO managers)
and can depend on the ingested tables by their asset keys, so lineage runs from the landing
objects to the user's results in one graph. A module that fails to import is reported and left
out; it must not take the ingestion sensor down with it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, AssetsDefinition, AssetSpec, DagsterError, Definitions, SourceAsset

log = logging.getLogger(__name__)


@dataclass
class UserModules:
    definitions: dict[str, Definitions] = field(default_factory=dict)  # by module name
    errors: dict[str, str] = field(default_factory=dict)


def load_user_modules(names: list[str]) -> UserModules:
    """Each module's ``defs`` (a ``dagster.Definitions``); failures by module name."""
    out = UserModules()
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            out.errors[name] = f"cannot import pipeline module '{name}': {exc!r}"
            continue
        defs = getattr(module, "defs", None)
        if not isinstance(defs, Definitions):
            out.errors[name] = (
                f"pipeline module '{name}' has no `defs = dagster.Definitions(...)` "
                f"(found {type(defs).__name__})"
            )
            continue
        out.definitions[name] = defs
    for reason in out.errors.values():
        log.error("%s", reason)
    return out


def asset_keys(assets: Iterable[Any]) -> set[AssetKey]:
    """The keys the given assets define (specs, source assets and computed assets alike)."""
    out: set[AssetKey] = set()
    for a in assets:
        if isinstance(a, AssetsDefinition):
            out |= set(a.keys)
        elif isinstance(a, AssetSpec | SourceAsset):
            out.add(a.key)
    return out


def merge_user_modules(platform: Definitions, user: UserModules) -> Definitions:
    """The platform's definitions plus each module's that fits: one that redefines a resource
    key or an asset key already taken is left out (its reason logged and kept in ``errors``)."""
    merged = platform
    for name, defs in user.definitions.items():
        try:
            candidate = Definitions.merge(merged, defs)
            candidate.get_repository_def()  # a key defined twice surfaces here, not at load
        except DagsterError as exc:
            user.errors[name] = f"pipeline module '{name}' left out: {exc}"
            log.error("%s", user.errors[name])
            continue
        merged = candidate
    return merged
