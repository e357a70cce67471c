"""Which models a key may call: its ``models`` patterns (``fnmatch``, case-sensitive).

A name is allowed when it matches a pattern, and a catalog alias also when its target
(``provider/model``) does, so ``models: ["openai/*"]`` admits the aliases of OpenAI
models too. A key without ``models`` may call everything.

A model the key may not call is refused exactly like a model that does not exist (404
``model_not_found``, as OpenAI answers a key without access to a model): a key cannot
learn what else the server offers, and ``GET /v1/models`` lists only what it may call.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from relay_core.plugin import Catalog, UnknownAlias
from relay_serve._settings import ApiKey

__all__ = ["check_model", "visible_models"]


def may_call(key: ApiKey | None, model: str, catalog: Catalog) -> bool:
    if key is None or not key.limits.models:
        return True
    names = [model]
    config = catalog.models.get(model)
    if config is not None:
        names.append(config.target)
    return any(fnmatchcase(name, pattern) for name in names for pattern in key.limits.models)


def check_model(key: ApiKey | None, model: str, catalog: Catalog) -> None:
    """Raise :class:`UnknownAlias` (answered 404 ``model_not_found``) unless ``key``
    may call ``model``."""
    if not may_call(key, model, catalog):
        raise UnknownAlias(model)


def visible_models(key: ApiKey | None, catalog: Catalog) -> Sequence[str]:
    """The catalog's aliases ``key`` may call."""
    return [alias for alias in catalog.aliases() if may_call(key, alias, catalog)]
