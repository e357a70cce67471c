"""The YAML catalog: model aliases, providers and their credentials, groups, prices.

:func:`load_catalog` reads a file into a frozen :class:`Catalog`. Every mistake (bad YAML,
an unknown or misspelt field, a wrong type, a group naming an undefined alias, an inline
API key) is a :class:`~relay_core.ConfigError` pointing at file, line and column, the way
a compiler reports one. Loading never imports a plugin and never reads a credential:
credentials are references (``$env.NAME``, ``keyring:SERVICE/USER``, ``file:PATH``)
resolved when a provider is first used, or by ``relay validate``.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import cattrs.cols
import cattrs.gen
from attrs import field, frozen

from relay_core._catalog_checks import check_references
from relay_core.errors import ConfigError, CredentialError, UnknownAlias
from relay_core.pricing import ModelPrice, PricingProfile
from relay_core.secrets import Secret, looks_like_api_key
from relay_core.serialize import make_converter, validation_leaves
from relay_core.types import GenerationConfig, resolve_aliases

__all__ = [
    "ApiKey",
    "BreakerSettings",
    "Catalog",
    "CredentialRef",
    "CredentialResolver",
    "Defaults",
    "GroupConfig",
    "Location",
    "ModelConfig",
    "ProviderConfig",
    "RateLimits",
    "RouteRule",
    "RouteWhen",
    "load_catalog",
    "parse_catalog",
]

Path_ = tuple[str | int, ...]


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@frozen
class Location:
    """Where a catalog value was written."""

    file: str | None = None
    line: int | None = None
    column: int | None = None


@frozen
class CredentialRef:
    """A reference to a secret: ``scheme`` (``env``, ``file``, ``keyring``...) and ``name``."""

    scheme: str
    name: str

    _PATTERN = re.compile(
        r"^(?:\$env\.(?P<env>[A-Za-z_][A-Za-z0-9_]*)|(?P<scheme>[a-z][a-z0-9_-]*):(?P<rest>.+))$"
    )

    @classmethod
    def parse(cls, text: str) -> CredentialRef:
        """Parse ``$env.NAME`` or ``scheme:rest``; :class:`ValueError` for anything else,
        including anything shaped like an inline key."""
        match = cls._PATTERN.match(text.strip())
        if match is None or looks_like_api_key(text):
            raise ValueError(
                "credentials must be references ($env.NAME, keyring:SERVICE/USER or "
                "file:PATH), not inline values"
            )
        if match["env"]:
            return cls("env", match["env"])
        return cls(match["scheme"], match["rest"])

    def __str__(self) -> str:
        return f"$env.{self.name}" if self.scheme == "env" else f"{self.scheme}:{self.name}"


CredentialResolver = Callable[[], "str | Secret | Awaitable[str | Secret]"]
"""A callable the application owns that returns a provider's key: sync or async, a
``str`` or a :class:`Secret`. Called whenever the provider's adapter is built (the first
call, and the first after :meth:`relay_core.Hub.refresh_credentials`)."""

ApiKey = CredentialRef | Secret | CredentialResolver
"""A provider's key as code may give it: a reference (the only form a YAML catalog
accepts), a :class:`Secret`, or a :data:`CredentialResolver`."""


def api_key_from_code(value: object, where: str) -> ApiKey | None:
    """``value`` as a provider key handed in code (``where`` names it in errors).

    A plain ``str`` must be a reference (``$env.NAME``...): a key must come wrapped in a
    :class:`Secret`, so that no repr, log line or traceback of the application's own
    objects ever prints it. :class:`CredentialError` otherwise, never quoting the value.
    """
    if value is None or isinstance(value, (CredentialRef, Secret)):
        return value
    if isinstance(value, str):
        try:
            return CredentialRef.parse(value)
        except ValueError:
            raise CredentialError(
                f"{where} is a plain string that is not a reference ($env.NAME, "
                "keyring:SERVICE/USER, file:PATH...); wrap a key in relay_core.Secret(...) "
                "so it is never printed, or pass a callable that returns it"
            ) from None
    if callable(value):
        return typing.cast("CredentialResolver", value)
    raise CredentialError(
        f"{where} must be a Secret, a reference string or a callable returning the key, "
        f"not {type(value).__name__}"
    )


def _api_key_field(value: object) -> ApiKey | None:
    return api_key_from_code(value, "ProviderConfig(api_key=...)")


class _FieldValueError(ValueError):
    """A field's validator refused its value: the error names the field, so that a
    catalog's message points at its line rather than at the section holding it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def _positive(_: Any, attribute: Any, value: float | None) -> None:
    if value is not None and value <= 0:
        raise _FieldValueError(
            attribute.name, f"{attribute.name} must be greater than 0, not {value}"
        )


def _not_negative(_: Any, attribute: Any, value: int | None) -> None:
    if value is not None and value < 0:
        raise _FieldValueError(attribute.name, f"{attribute.name} must be 0 or more, not {value}")


@frozen(kw_only=True)
class ProviderConfig:
    """Settings of one provider; the key is the name used in ``provider/model`` targets."""

    plugin: str | None = field(
        default=None,
        metadata=_doc(
            "Provider plugin to use when the key is not a provider name "
            "(e.g. openai-compat for a local vLLM)."
        ),
    )
    # In code also a Secret or a resolver callable (see ApiKey); a YAML file holds
    # references only, so the schema shows references only.
    api_key: ApiKey | None = field(
        default=None,
        converter=_api_key_field,
        metadata=_doc(
            "$env.NAME, keyring:SERVICE/USER, file:PATH or a secret manager's scheme "
            "(aws-sm:, gcp-sm:, vault: with its plugin); never the key."
        ),
    )
    base_url: str | None = field(default=None, metadata=_doc("Overrides the plugin's default URL."))
    timeout: float | None = field(
        default=None,
        validator=_positive,
        metadata=_doc(
            "Seconds one HTTP attempt may take: the whole answer; a stream: its start, each pause."
        ),
    )
    max_retries: int | None = field(
        default=None, validator=_not_negative, metadata=_doc("Retries on 429, 5xx, timeouts.")
    )
    circuit_breaker: BreakerSettings | None = field(
        default=None, metadata=_doc("This provider's circuit breakers (over defaults').")
    )
    headers: dict[str, str] = field(factory=dict, metadata=_doc("Extra HTTP headers."))
    options: dict[str, Any] = field(factory=dict, metadata=_doc("Plugin-specific settings."))


@frozen(kw_only=True)
class RateLimits:
    """How fast the batch engine may call one model (each process on its own)."""

    requests_per_minute: float | None = field(
        default=None, validator=_positive, metadata=_doc("Requests started per minute.")
    )
    tokens_per_minute: float | None = field(
        default=None,
        validator=_positive,
        metadata=_doc("Input plus output tokens per minute (estimated before each call)."),
    )
    concurrency: int | None = field(
        default=None, validator=_positive, metadata=_doc("Calls in flight at once.")
    )


@frozen(kw_only=True)
class ModelConfig:
    """An alias for ``provider/model`` with its default parameters and price."""

    target: str = field(
        metadata={
            **_doc("provider/model, e.g. openai/gpt-4.1 or mock/echo."),
            "pattern": r"^[^/\s]+/.+$",
        }
    )
    params: GenerationConfig = field(
        factory=GenerationConfig, metadata=_doc("Default generation settings.")
    )
    provider_kwargs: dict[str, Any] = field(
        factory=dict, metadata=_doc("Passed to the provider's wire payload untouched.")
    )
    pricing: ModelPrice | None = field(
        default=None, metadata=_doc("Price per million tokens; wins over every pricing source.")
    )
    pricing_profile: str | None = field(default=None, metadata=_doc("A pricing_profiles key."))
    limits: RateLimits | None = field(
        default=None, metadata=_doc("Rate limits the batch engine keeps for this model.")
    )
    cache: bool | None = field(
        default=None, metadata=_doc("Serve repeated requests from the response cache.")
    )
    description: str | None = field(
        default=None, metadata=_doc("Free text about the alias, shown by relay models list.")
    )
    tags: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Labels; one naming a task (code, chat...) ranks the alias higher for that task "
            "(rules groups, relay models recommend)."
        ),
    )

    @property
    def provider(self) -> str:
        """The provider's name: the part of :attr:`target` before the first slash."""
        return self.target.partition("/")[0]

    @property
    def model(self) -> str:
        """The model's name at the provider: the part of :attr:`target` after the first
        slash (it may hold slashes of its own)."""
        return self.target.partition("/")[2]


@frozen(kw_only=True)
class BreakerSettings:
    """A circuit breaker per provider and model: after ``failures`` calls in a row fail
    (retries spent), calls fail at once with ``CircuitOpen`` (and groups skip the member)
    for ``reset_after`` seconds; then ``half_open_probes`` calls are let through, and the
    first success closes the breaker again."""

    failures: int = field(
        default=5,
        validator=_positive,
        metadata=_doc("Calls failing in a row (retries spent) that open the breaker; 1 or more."),
    )
    reset_after: float = field(
        default=30.0,
        validator=_positive,
        metadata=_doc("Seconds the breaker stays open before probes go through; above 0."),
    )
    half_open_probes: int = field(
        default=1,
        validator=_positive,
        metadata=_doc("Probe calls let through at once while half open; 1 or more."),
    )


@frozen(kw_only=True)
class RouteWhen:
    """The conditions of a routing rule; all given ones must hold."""

    min_prompt_tokens: int | None = field(
        default=None, metadata=_doc("At least this many prompt tokens (estimated).")
    )
    max_prompt_tokens: int | None = field(
        default=None, metadata=_doc("At most this many prompt tokens (estimated).")
    )
    needs: tuple[str, ...] = field(
        default=(), metadata=_doc("Capabilities the request uses (tools, vision...).")
    )
    tags: tuple[str, ...] = field(default=(), metadata=_doc("Tags the request carries (all)."))


@frozen(kw_only=True)
class RouteRule:
    """When ``when`` holds, try ``use`` first (in order)."""

    use: tuple[str, ...] = field(metadata=_doc("Members to try first."))
    when: RouteWhen = field(
        factory=RouteWhen,
        metadata=_doc("Conditions on the request; with none given the rule always matches."),
    )


@frozen(kw_only=True)
class GroupConfig:
    """Several aliases behind one name, and how a call picks among them.

    ``fallback`` tries the members in order; ``round_robin`` rotates the first member
    per call; ``weighted`` picks the first at random by ``weights``; ``lowest_cost``
    tries the cheapest first; ``rules`` tries the members of the first matching rule,
    then the other capable members by ``budget``. Every strategy falls back to the next
    member on a retryable or unavailable error, never on a bad request.
    """

    strategy: Literal["fallback", "round_robin", "weighted", "lowest_cost", "rules"] = field(
        metadata=_doc(
            "How a call orders the members: as written (fallback), rotating (round_robin), "
            "drawn by weights (weighted), cheapest first (lowest_cost) or by rules."
        )
    )
    members: tuple[str, ...] = field(metadata=_doc("Model aliases or other groups."))
    weights: dict[str, float] = field(
        factory=dict, metadata=_doc("weighted: member → relative weight (default 1).")
    )
    rules: tuple[RouteRule, ...] = field(default=(), metadata=_doc("rules: tried in order."))
    budget: Literal["cheap", "balanced", "best"] = field(
        default="balanced",
        metadata=_doc("rules: how members no rule names are ordered (see relay models recommend)."),
    )
    task: str | None = field(
        default=None, metadata=_doc("rules: the task members are scored for (code, chat...).")
    )


@frozen(kw_only=True)
class Defaults:
    """Settings that apply to every provider and call unless set closer to it."""

    model: str | None = field(default=None, metadata=_doc("Alias used when a call names none."))
    timeout: float = field(
        default=60.0,
        validator=_positive,
        metadata=_doc("Seconds one HTTP attempt may take, for a provider that sets no timeout."),
    )
    max_retries: int = field(
        default=3,
        validator=_not_negative,
        metadata=_doc(
            "Retries on 429, 5xx, timeouts (0: none), for a provider that sets no max_retries."
        ),
    )
    pricing_profile: str | None = field(
        default=None, metadata=_doc("A pricing_profiles key for every model that names none.")
    )
    cache: bool = field(
        default=False, metadata=_doc("Use the response cache for every alias (a plugin).")
    )
    deadline: float | None = field(
        default=None,
        validator=_positive,
        metadata=_doc("Seconds one call may take in all: attempts, waits and fallbacks."),
    )
    circuit_breaker: BreakerSettings | None = field(
        default=None, metadata=_doc("Circuit breakers for every provider (off when absent).")
    )
    strict_credential_files: bool = field(
        default=False,
        metadata=_doc(
            "Refuse a file:PATH credential that every user may read or write (chmod o-rwx)."
        ),
    )


@frozen(kw_only=True)
class Catalog:
    """A Relay catalog: providers, model aliases, groups, pricing profiles, defaults, and
    the settings of plugins that are not providers."""

    providers: dict[str, ProviderConfig] = field(
        factory=dict,
        metadata=_doc(
            "Providers by the name targets use (provider/model); one with no entry runs on "
            "its plugin's defaults."
        ),
    )
    models: dict[str, ModelConfig] = field(
        factory=dict,
        metadata=_doc(
            "Model aliases by name (no /): a provider/model target, or a mapping with target "
            "and settings."
        ),
    )
    groups: dict[str, GroupConfig] = field(
        factory=dict,
        metadata=_doc(
            "Groups by name (no /, not a model's name): several aliases behind one name."
        ),
    )
    pricing_profiles: dict[str, PricingProfile] = field(
        factory=dict,
        metadata=_doc("Price adjustments by name, for a model's or the defaults' pricing_profile."),
    )
    defaults: Defaults = field(
        factory=Defaults,
        metadata=_doc("Settings for every provider and call unless set closer to it."),
    )
    plugins: dict[str, dict[str, Any]] = field(
        factory=dict,
        metadata=_doc(
            "Settings of plugins that are not providers (serve: ..., dashboard: ...), by "
            "plugin; each plugin checks its own and points errors here with catalog.error(). "
            "A section no installed plugin reads is an error, unless it says optional: true."
        ),
    )
    optional_plugins: frozenset[str] = field(
        factory=frozenset, eq=False, repr=False, metadata={"internal": True}
    )
    path: str | None = field(default=None, eq=False, metadata={"internal": True})
    positions: Mapping[Path_, tuple[int, int]] = field(
        factory=dict, eq=False, repr=False, metadata={"internal": True}
    )

    def aliases(self) -> list[str]:
        """Every model alias and group name of the catalog, sorted."""
        return sorted([*self.models, *self.groups])

    def plugin_of(self, provider: str) -> str:
        """The registered provider behind a target's provider name: the catalog entry's
        ``plugin`` when it names one (``local-vllm: {plugin: openai-compat}``), else the
        name itself."""
        config = self.providers.get(provider)
        return (config.plugin if config else None) or provider

    def lookup(self, name: str) -> ModelConfig | GroupConfig:
        """The model or group behind ``name``; a bare ``provider/model`` becomes a model."""
        if name in self.models:
            return self.models[name]
        if name in self.groups:
            return self.groups[name]
        if "/" in name and name.partition("/")[0] and name.partition("/")[2]:
            return ModelConfig(target=name)
        raise UnknownAlias(name, known=self.aliases())

    def where(self, at: Path_ = ()) -> Location:
        """File, line and column of the node at path ``at`` (or of its nearest parent)."""
        for end in range(len(at), -1, -1):
            if at[:end] in self.positions:
                line, column = self.positions[at[:end]]
                return Location(self.path, line, column)
        return Location(self.path)

    def error(self, message: str, at: Path_ = ()) -> ConfigError:
        """A :class:`ConfigError` pointing at the node at path ``at``."""
        return ConfigError(message, **attrs.asdict(self.where(at)))


# ---------------------------------------------------------------------------- loading


# The largest catalog accepted, checked before anything is parsed: 4 MiB. A catalog of
# 5,000 models with descriptions is about 400 KiB, so real catalogs have ten times the
# room, while a mistaken or hostile file (a log, a dump: 50 MB took 10.6 s and 743 MB
# before the value limit below refused it) is refused at once, by its size.
MAX_CATALOG_BYTES = 4 * 1024 * 1024


def load_catalog(path: str | Path) -> Catalog:
    """Read and check a catalog file. Raises :class:`ConfigError` with file:line:column."""
    file = Path(path)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_CATALOG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read catalog: {error.strerror}", file=str(file)) from None
    if len(raw) > MAX_CATALOG_BYTES:
        raise ConfigError(_too_large(_size_of(file, len(raw))), file=str(file))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        raise ConfigError(
            "the catalog is not UTF-8 text",
            file=str(file),
            line=before.count(b"\n") + 1,
            column=error.start - (before.rfind(b"\n") + 1) + 1,
        ) from None
    return parse_catalog(text, path=str(file))


def _size_of(file: Path, read: int) -> int:
    try:
        return file.stat().st_size or read
    except OSError:
        return read


def _too_large(size: int) -> str:
    shown = f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"
    limit = MAX_CATALOG_BYTES // (1024 * 1024)
    return (
        f"the catalog is too large: {shown}, more than the {limit} MiB a catalog may be "
        "(is this the right file?)"
    )


def parse_catalog(text: str, *, path: str = "<string>") -> Catalog:
    """Check catalog text; ``path`` is only used in error messages."""
    # A character is at most 4 bytes: shorter text cannot be over the limit.
    if len(text) > MAX_CATALOG_BYTES // 4:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_CATALOG_BYTES:
            raise ConfigError(_too_large(size), file=path)
    data, positions = _read_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the catalog must be a mapping", file=path, line=1, column=1)
    shell = Catalog(path=path, positions=positions)
    try:
        catalog = _strict_converter().structure(data, Catalog)
    except cattrs.BaseValidationError as error:
        found = [
            shell.error(_explain_null(data, text, at, positions) or message, at)
            for at, message in _validation_messages(error)
        ]
        found.sort(key=lambda e: (e.line or 0, e.column or 0))
        first = found[0]
        first.also = found[1:]
        raise first from None
    catalog = attrs.evolve(catalog, path=path, positions=positions)
    catalog = _take_optional_flags(catalog)
    check_references(catalog)
    return catalog


def _take_optional_flags(catalog: Catalog) -> Catalog:
    """``optional: true`` in a ``plugins:`` section is the catalog's word, not the
    plugin's: note it and hand the plugin its section without it."""
    optional: set[str] = set()
    sections: dict[str, dict[str, Any]] = {}
    for name, section in catalog.plugins.items():
        if "optional" in section:
            flag = section["optional"]
            if not isinstance(flag, bool):
                raise catalog.error(
                    f"plugins.{name}.optional must be true or false, not {_show(flag)}",
                    ("plugins", name, "optional"),
                )
            if flag:
                optional.add(name)
            section = {key: value for key, value in section.items() if key != "optional"}
        sections[name] = section
    if not optional and sections == catalog.plugins:
        return catalog
    return attrs.evolve(catalog, plugins=sections, optional_plugins=frozenset(optional))


def _explain_null(
    data: Any, text: str, at: Path_, positions: Mapping[Path_, tuple[int, int]]
) -> str | None:
    """Why an entry that needs a value holds none: a key with nothing after it is null
    in YAML, most often because the lines meant for it are not indented under it."""
    if not at:
        return None
    value: Any = data
    for part in at:
        found = (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        )
        if not found:
            return None
        value = value[part]
    if value is not None or at not in positions:
        return None
    line, column = positions[at]
    message = f"{at[-1]!r} is empty (null)"
    for following in text.splitlines()[line:]:
        if not following.strip() or following.lstrip().startswith("#"):
            continue
        indent = len(following) - len(following.lstrip(" "))
        if indent < column:  # the next entry is a sibling (or an outer one), not a child
            return f"{message}: is the next line indented under it?"
        break
    return f"{message}: give it a value"


# Every value of the catalog with aliases expanded: thousands of models fit many times over.
_MAX_VALUES = 100_000


def _read_yaml(text: str, path: str) -> tuple[Any, dict[Path_, tuple[int, int]]]:
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    positions: dict[Path_, tuple[int, int]] = {}
    loader = loader_cls(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, positions
        return _construct(loader, root, (), positions, path), positions
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        if mark is not None and _tab_at(text, mark.line, mark.column):
            # PyYAML's "found character '\t' that cannot start any token" hides the cause.
            problem = "a tab character; YAML indents with spaces"
        raise ConfigError(
            f"invalid YAML: {problem}",
            file=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML: {error}", file=path) from None
    except RecursionError:
        raise ConfigError("invalid YAML: an alias refers to itself", file=path) from None
    finally:
        loader.dispose()


def _tab_at(text: str, line: int, column: int) -> bool:
    lines = text.splitlines()
    return 0 <= line < len(lines) and 0 <= column < len(lines[line]) and lines[line][column] == "\t"


def _construct(
    loader: Any, node: Any, at: Path_, positions: dict[Path_, tuple[int, int]], path: str
) -> Any:
    import yaml

    positions[at] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if len(positions) > _MAX_VALUES:
        # Aliases of aliases ("billion laughs") multiply at each level: a few hundred
        # bytes can stand for billions of values. No catalog needs this many.
        raise ConfigError(
            f"the catalog holds more than {_MAX_VALUES:,} values once its aliases are "
            "expanded (aliases of aliases?)",
            file=path,
            # At the top-level entry being expanded: an alias's own mark is its anchor's.
            line=positions[at[:1]][0],
            column=positions[at[:1]][1],
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                raise ConfigError(
                    "mapping keys must be strings",
                    file=path,
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                )
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    file=path,
                    line=key_node.start_mark.line + 1,
                    column=key_node.start_mark.column + 1,
                )
            entry = (*at, key)
            result[key] = _construct(loader, value_node, entry, positions, path)
            # Errors about an entry point at its key, where an editor would underline.
            positions[entry] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*at, index), positions, path)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


# Fields other tools' catalogs have, with where Relay keeps the same thing: a catalog
# copied from one of them is mended from the errors alone (docs/migrating.md).
_MOVED: dict[tuple[str, str], str] = {
    ("ModelConfig", "credential"): "a key belongs to the model's provider: "
    "providers.NAME.api_key (a second key for one provider is a second provider entry "
    "with plugin: NAME)",
    ("Catalog", "version"): "Relay's catalog has no version: remove it",
}


def _generation_setting(cls: type, key: str) -> str | None:
    """The generation setting ``key`` names, maybe misspelt, when ``cls`` keeps those
    under ``params``: ``temperature`` beside a model's ``target`` is the commonest slip
    in a catalog written from another tool's, which keeps them there."""
    if not any(
        a.name == "params" and a.type in (GenerationConfig, "GenerationConfig")
        for a in attrs.fields(cls)
    ):
        return None
    names = [a.name for a in attrs.fields(GenerationConfig)]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.8)
    return close[0] if close else None


def _validation_messages(error: BaseException) -> Iterator[tuple[Path_, str]]:
    for at, leaf in validation_leaves(error):
        if isinstance(leaf, cattrs.ForbiddenExtraKeysError):
            known = [a.name for a in attrs.fields(leaf.cl) if not a.metadata.get("internal")]
            for key in sorted(leaf.extra_fields, key=str):
                close = difflib.get_close_matches(str(key), known, n=1)
                moved = _MOVED.get((leaf.cl.__name__, str(key)))
                setting = _generation_setting(leaf.cl, str(key))
                hint = (
                    f"; {moved}"
                    if moved
                    else f"; a generation setting goes under params: params.{setting}"
                    if setting
                    else f"; did you mean {close[0]!r}?"
                    if close
                    else f"; expected one of {', '.join(known)}"
                )
                yield (*at, key), f"unknown field {key!r}{hint}"
        elif isinstance(leaf, KeyError):
            yield at[:-1], f"missing required field {at[-1]!r}" if at else "missing required field"
        else:
            field_name = ".".join(str(p) for p in at) or "catalog"
            where = (*at, leaf.field_name) if isinstance(leaf, _FieldValueError) else at
            yield where, f"{field_name}: {leaf}"


# ---------------------------------------------------------------------------- converter


_LITERAL: Any = Literal


def _show(value: Any) -> str:
    # A key pasted into the wrong field must not be echoed back in the error.
    if isinstance(value, str) and looks_like_api_key(value):
        return "(a value that looks like a key, not shown)"
    return repr(value)


def _make_strict_converter() -> cattrs.Converter:
    conv = make_converter(strict=True, unions=False)

    def strict_scalar(kind: type, accepted: tuple[type, ...]) -> None:
        def hook(value: Any, _: type) -> Any:
            # bool is an int in Python, but `timeout: yes` is a mistake in a catalog.
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepted):
                raise TypeError(
                    f"expected {kind.__name__}, got {type(value).__name__} {_show(value)}"
                )
            return kind(value)

        conv.register_structure_hook(kind, hook)

    strict_scalar(str, (str,))
    strict_scalar(int, (int,))
    strict_scalar(float, (int, float))
    strict_scalar(bool, (bool,))

    def is_homogenous_tuple(cls: Any) -> bool:
        args = typing.get_args(cls)
        return typing.get_origin(cls) is tuple and len(args) == 2 and args[1] is Ellipsis

    def list_only(cls: Any) -> Any:
        # A string is iterable: `tags: fast` would otherwise become ('f', 'a', 's', 't').
        items = cattrs.cols.homogenous_tuple_structure_factory(cls, conv)

        def hook(value: Any, _: type) -> Any:
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"expected a list, got {type(value).__name__} {_show(value)}")
            return items(value, cls)

        return hook

    conv.register_structure_hook_factory(is_homogenous_tuple, list_only)

    def mapping_only(make: Any) -> Any:
        # Otherwise `defaults: 3` reads "argument of type 'int' is not iterable".
        def factory(cls: Any) -> Any:
            inner = make(cls)

            def hook(value: Any, _: type) -> Any:
                if not isinstance(value, dict):
                    raise TypeError(f"expected a mapping, got {type(value).__name__}")
                return inner(value, cls)

            return hook

        return factory

    def is_dict(cls: Any) -> bool:
        return typing.get_origin(cls) is dict

    conv.register_structure_hook_factory(attrs.has, mapping_only(conv.gen_structure_attrs_fromdict))
    conv.register_structure_hook_factory(is_dict, mapping_only(conv.gen_structure_mapping))

    def free_form(value: Any, _: type) -> dict[str, Any]:
        # Settings the catalog does not type (options, plugins.<name>): any mapping.
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping of settings, got {type(value).__name__}")
        return value

    conv.register_structure_hook_func(lambda cls: cls == dict[str, Any], free_form)

    def structure_literal(value: Any, literal: Any) -> Any:
        allowed = typing.get_args(literal)
        if value not in allowed:
            raise ValueError(f"{_show(value)} is not one of {', '.join(map(repr, allowed))}")
        return value

    conv.register_structure_hook_func(
        lambda cls: typing.get_origin(cls) is _LITERAL, structure_literal
    )

    def structure_ref(value: Any, _: type) -> CredentialRef:
        if not isinstance(value, str):
            raise TypeError(f"expected a credential reference, got {type(value).__name__}")
        return CredentialRef.parse(value)

    conv.register_structure_hook(CredentialRef, structure_ref)

    def structure_api_key(value: Any, _: type) -> CredentialRef | None:
        # A YAML file holds references only: a Secret or a callable exists in code alone.
        return None if value is None else structure_ref(value, CredentialRef)

    def is_api_key(cls: Any) -> bool:
        return cls is not CredentialRef and CredentialRef in typing.get_args(cls)

    conv.register_structure_hook_func(is_api_key, structure_api_key)

    params_from_dict = cattrs.gen.make_dict_structure_fn(
        GenerationConfig, conv, _cattrs_forbid_extra_keys=True
    )

    def structure_params(value: Any, _: type) -> GenerationConfig:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {type(value).__name__}")
        return params_from_dict(resolve_aliases(value), GenerationConfig)

    conv.register_structure_hook(GenerationConfig, structure_params)
    model_from_dict = cattrs.gen.make_dict_structure_fn(
        ModelConfig, conv, _cattrs_forbid_extra_keys=True
    )

    def structure_model(value: Any, _: type) -> ModelConfig:
        # `fast: mock/echo` is shorthand for `fast: {target: mock/echo}`.
        if isinstance(value, str):
            return ModelConfig(target=value)
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping or 'provider/model', got {type(value).__name__}")
        return model_from_dict(value, ModelConfig)

    conv.register_structure_hook(ModelConfig, structure_model)
    catalog_from_dict = cattrs.gen.make_dict_structure_fn(
        Catalog,
        conv,
        _cattrs_forbid_extra_keys=True,
        path=cattrs.gen.override(omit=True),
        positions=cattrs.gen.override(omit=True),
        optional_plugins=cattrs.gen.override(omit=True),
    )
    conv.register_structure_hook(Catalog, catalog_from_dict)
    return conv


_strict: cattrs.Converter | None = None


def _strict_converter() -> cattrs.Converter:
    global _strict
    if _strict is None:
        _strict = _make_strict_converter()
    return _strict
