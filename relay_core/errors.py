"""Every error Relay raises, in one tree.

Catch :class:`RelayError` to handle anything Relay raises; catch a branch to choose
what to do::

    RelayError
    ├── ConfigError                  bad catalog: knows file, line and column
    │   ├── CredentialError          a credential reference that does not resolve
    │   ├── UnknownAlias             a model alias the catalog does not define
    │   └── ProviderConflict         two plugins register the same provider name
    ├── PluginNotInstalled           a provider no installed plugin provides
    │   ├── PluginBlocked            its plugin is installed but blocked (says by what)
    │   └── PluginBroken             its plugin is installed but failed to load (says why)
    ├── UnsupportedCapability        the provider cannot do what the request asks
    │   └── UnsupportedSetting       nor honour a generation setting it sets (top_k...)
    ├── GuardrailViolation           a guardrail refused the request or the response
    ├── JobError                     a batch job cannot do what was asked
    │   ├── BatchInputError          a request of a job is wrong: names file:line or custom_id
    │   ├── JobNotFound              no job with that id in the workspace
    │   ├── JobConflict              the id is taken: in progress, or finished (overwrite)
    │   ├── ResultsNotReady          the job has not finished; no results on disk yet
    │   └── WorkspaceError           no workspace there, one that cannot be opened, a full disk
    └── ProviderError                the provider answered with an error, or not at all
        ├── RateLimitError           retryable; ``retry_after`` seconds when known
        ├── ProviderUnavailable      retryable; 5xx, connection refused or reset
        │   └── CircuitOpen          not retried; the circuit breaker refuses calls for now
        ├── Timeout                  retryable; no answer in time
        ├── MalformedResponse        retryable; an answer Relay cannot parse
        ├── AuthenticationError      fail fast; the key is missing, wrong or lacks rights
        ├── QuotaExceeded            fail fast; out of credit or over the billing quota
        ├── NotFoundError            fail fast; no such model or resource
        ├── ContextWindowExceeded    fail fast here; a larger model may take it
        ├── ContentPolicyError       fail fast; the provider refused the content
        └── InvalidRequestError      fail fast; the request itself is wrong

``ProviderError.retryable`` tells retry loops and fallback groups what to do: a retryable
error is worth another attempt at the same provider, and any provider error except
:class:`InvalidRequestError` is worth a try at the next member of a fallback group.

A plugin that fails to load raises nothing while plugins load, which would take every
other plugin down with it: it is reported with a :class:`relay_core.PluginWarning` and
listed by ``relay plugins``, and a call to one of its providers raises
:class:`PluginBroken`.

Lower-level errors (httpx transport errors, HTTP status codes) are translated into this
tree in exactly one place, :mod:`relay_core.http`, and chained with ``from``. Messages
never contain a secret: every text passes through :func:`relay_core.secrets.mask`.
"""

from __future__ import annotations

from collections.abc import Iterable

from relay_core.secrets import mask

__all__ = [
    "AuthenticationError",
    "BatchInputError",
    "CircuitOpen",
    "ConfigError",
    "ContentPolicyError",
    "ContextWindowExceeded",
    "CredentialError",
    "GuardrailViolation",
    "InvalidRequestError",
    "JobConflict",
    "JobError",
    "JobNotFound",
    "MalformedResponse",
    "NotFoundError",
    "PluginBlocked",
    "PluginBroken",
    "PluginNotInstalled",
    "ProviderConflict",
    "ProviderError",
    "ProviderUnavailable",
    "QuotaExceeded",
    "RateLimitError",
    "RelayError",
    "ResultsNotReady",
    "Timeout",
    "UnknownAlias",
    "UnsupportedCapability",
    "UnsupportedSetting",
    "WorkspaceError",
]


class RelayError(Exception):
    """The root of every error Relay raises.

    ``str(error)`` is a complete sentence for a person; the attributes of each subclass
    carry the same facts for a program. Secrets are masked before the message is stored.
    """

    def __init__(self, message: str) -> None:
        self.message = mask(message)
        super().__init__(self.message)

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take different arguments; rebuild from the state instead, so every
        # error crosses process boundaries (multiprocessing, concurrent.futures) intact.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[RelayError], args: tuple[object, ...], state: dict[str, object]
) -> RelayError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(RelayError):
    """The catalog (or a value given in its place) is wrong.

    ``file``, ``line`` and ``column`` (1-based) point at the offending node when it is
    known; ``str()`` renders them as ``file:line:column: message`` like a compiler.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = mask(message)
        # Further mistakes found in the same pass, in file order, so `relay validate`
        # can list them all at once as an editor would.
        self.also: list[ConfigError] = []
        super().__init__(self._render())

    @property
    def location(self) -> str | None:
        """``file:line:column`` (as much of it as is known), or None."""
        if self.file is None:
            return None
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def _render(self) -> str:
        return self.reason if self.location is None else f"{self.location}: {self.reason}"


class CredentialError(ConfigError):
    """A credential reference could not be resolved (e.g. an unset environment variable).

    The message names the reference (``$env.OPENAI_API_KEY``), never a value.
    """


class UnknownAlias(ConfigError):
    """A model alias or group name that the catalog does not define and that is not a
    ``provider/model`` string either."""

    def __init__(self, alias: str, *, known: list[str] | None = None) -> None:
        self.alias = alias
        hint = ""
        if known:
            hint = f"; known aliases: {', '.join(sorted(known))}"
        super().__init__(
            f"unknown model {alias!r}: not an alias in the catalog and not 'provider/model'{hint}"
        )


class ProviderConflict(ConfigError):
    """Two or more plugins register the same provider name, so Relay cannot tell which
    one a ``provider/model`` target means. ``provider`` is the name; ``plugins`` the
    entry point (or in-code) names of the plugins, ``distributions`` their distributions
    (None for one registered in code), in the same order. Every other provider of those
    plugins keeps working."""

    def __init__(
        self,
        provider: str,
        plugins: tuple[str, ...],
        distributions: tuple[str | None, ...],
        *,
        fix: str,
    ) -> None:
        self.provider = provider
        self.plugins = plugins
        self.distributions = distributions
        named = [
            f"{plugin!r} ({dist})" if dist else repr(plugin)
            for plugin, dist in zip(plugins, distributions, strict=True)
        ]
        both = " and ".join(named) if len(named) == 2 else ", ".join(named)
        which = "both" if len(named) == 2 else "each of"
        super().__init__(f"provider {provider!r} is registered by {which} {both}; {fix}")


class PluginNotInstalled(RelayError):
    """No installed plugin provides the named provider (or, with ``what``, feature).

    ``distribution`` is what to ``pip install``, or None when no known distribution
    offers that name (then ``suggestions`` holds close provider names, if any, and the
    message lists the installed providers).
    """

    def __init__(
        self,
        provider: str,
        distribution: str | None,
        *,
        what: str | None = None,
        suggestions: tuple[str, ...] = (),
        installed: tuple[str, ...] | None = None,
    ) -> None:
        self.provider = provider
        self.distribution = distribution
        self.suggestions = suggestions
        needed = what or f"provider {provider!r}"
        if suggestions:
            options = " or ".join(repr(name) for name in suggestions)
            message = f"{needed} is not installed; did you mean {options}?"
        elif distribution is not None:
            message = f"{needed} is not installed; pip install {distribution}"
        else:
            listed = ", ".join(installed) if installed else "none"
            message = (
                f"{needed} is unknown: no installed plugin provides it (installed "
                f"providers: {listed}). A third-party plugin is found through its 'relay' "
                "entry point once its distribution is pip installed; `relay plugins` "
                "lists the plugins found"
            )
        super().__init__(message)


class PluginBlocked(PluginNotInstalled):
    """The plugin that offers the provider is installed but was not loaded: blocked by
    ``RELAY_BLOCK_PLUGINS``, left out of the ``RELAY_PLUGINS`` allow-list, or blocked in
    code. ``plugin`` is its entry point name, ``distribution`` the distribution that
    installed it; ``by`` says what blocked it."""

    def __init__(self, provider: str, plugin: str, distribution: str | None, *, by: str) -> None:
        self.provider = provider
        self.distribution = distribution
        self.suggestions = ()
        self.plugin = plugin
        self.by = by
        origin = f" ({distribution})" if distribution else ""
        RelayError.__init__(
            self,
            f"provider {provider!r} is not available: plugin {plugin!r}{origin} is "
            f"installed but {by}",
        )


class PluginBroken(PluginNotInstalled):
    """The plugin that offers the provider is installed but failed to load (an import
    error, a misspelt hook, a registration that raised). ``plugin`` is its entry point
    name, ``distribution`` the distribution that installed it; ``cause`` says what went
    wrong and how to fix it."""

    def __init__(self, provider: str, plugin: str, distribution: str | None, *, cause: str) -> None:
        self.provider = provider
        self.distribution = distribution
        self.suggestions = ()
        self.plugin = plugin
        self.cause = cause
        origin = f" ({distribution})" if distribution else ""
        RelayError.__init__(
            self,
            f"provider {provider!r} is not available: plugin {plugin!r}{origin} is "
            f"broken and was not loaded: {cause}",
        )


class UnsupportedCapability(RelayError):
    """The provider (or model) lacks a capability the call needs, e.g. ``tools``."""

    def __init__(self, provider: str, capability: str, *, model: str | None = None) -> None:
        self.provider = provider
        self.capability = capability
        self.model = model
        target = f"{provider}/{model}" if model else provider
        super().__init__(f"{target} does not support {capability}")


class UnsupportedSetting(UnsupportedCapability):
    """The provider cannot honour a generation setting the call asked for (``top_k`` of
    OpenAI, ``frequency_penalty`` of Anthropic): refused rather than silently dropped
    (only ``seed`` is left out instead: ``BEST_EFFORT_SETTINGS``), so an answer
    never looks as if it followed a setting that was ignored. ``takes`` lists the
    settings the provider does honour. A group tries its next member."""

    def __init__(
        self, provider: str, setting: str, *, model: str | None = None, takes: Iterable[str] = ()
    ) -> None:
        self.provider = provider
        self.capability = f"the {setting!r} setting"
        self.model = model
        self.setting = setting
        self.takes = tuple(sorted(takes))
        target = f"{provider}/{model}" if model else provider
        RelayError.__init__(
            self,
            f"{target} does not support the {setting!r} setting (it takes "
            f"{', '.join(self.takes) or 'none'}): leave it out of the call and of the "
            "catalog's params for this model",
        )


class GuardrailViolation(RelayError):
    """A guardrail refused a request or a response. ``rule`` names the guardrail rule.

    ``try_next`` says the refusal is about the model, not the request (a caller not
    allowed this model): a group then tries its next member instead of failing.
    """

    def __init__(
        self, rule: str, message: str, *, custom_id: str | None = None, try_next: bool = False
    ) -> None:
        self.rule = rule
        self.custom_id = custom_id
        self.try_next = try_next
        prefix = f"request {custom_id!r}: " if custom_id else ""
        super().__init__(f"{prefix}guardrail {rule!r} refused: {message}")


class JobError(RelayError):
    """A batch job cannot do what was asked. ``job_id`` names the job when known."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(message)


class BatchInputError(JobError):
    """A request given to a job is wrong (a duplicate ``custom_id``, a malformed JSONL
    line, an unknown model) or the job id itself is unusable.

    ``file`` and ``line`` (1-based) point at the JSONL line when the requests came from
    a file; ``index`` is the request's 0-based position otherwise; ``custom_id`` names
    the request when it has one. Nothing of the job was submitted.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        file: str | None = None,
        line: int | None = None,
        index: int | None = None,
        custom_id: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.index = index
        self.custom_id = custom_id
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        elif custom_id is not None:
            where = f"request {custom_id!r}: "
        elif index is not None:
            where = f"request {index}: "
        super().__init__(where + message, job_id=job_id)


class JobNotFound(JobError):
    """The workspace holds no job with this id."""

    def __init__(self, job_id: str, directory: str) -> None:
        self.directory = directory
        super().__init__(f"no job {job_id!r} in the workspace {directory}", job_id=job_id)


class JobConflict(JobError):
    """The job id is taken: by a job another client is working on or that is waiting on
    its provider (``status`` says which), or by a finished job, which only
    ``overwrite=True`` replaces."""

    def __init__(self, message: str, *, job_id: str, status: str) -> None:
        self.status = status
        super().__init__(message, job_id=job_id)


class ResultsNotReady(JobError):
    """The job's results are not on disk yet; ``status`` is where the job stands."""

    def __init__(self, message: str, *, job_id: str, status: str) -> None:
        self.status = status
        super().__init__(message, job_id=job_id)


class WorkspaceError(JobError):
    """The workspace directory cannot be used; the message says where and what is wrong.

    ``directory`` is the path as given; ``missing`` is true when there is simply no
    workspace there yet (only submitting a job creates one). Refused at opening, nothing
    on disk was changed. Raised during a job (the disk is full, the workspace read-only),
    the message names the path and the cause; what was written before is kept, and the
    job resumes once the disk takes writes again.
    """

    def __init__(self, message: str, *, directory: str, missing: bool = False) -> None:
        self.directory = directory
        self.missing = missing
        super().__init__(message)


class ProviderError(RelayError):
    """The provider answered with an error, or did not answer.

    Attributes: ``provider``, ``model``, ``status_code`` (None when there was no HTTP
    answer), ``provider_message`` (the provider's own words, masked), ``custom_id`` of
    the request when it had one, ``retry_after`` (seconds the provider asked to wait,
    when it said: a 429's or a 503's ``Retry-After``) and ``retryable``.
    """

    retryable: bool = False
    kind: str = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        custom_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.custom_id = custom_id
        self.provider_message = mask(message)
        super().__init__(self._render())

    def __str__(self) -> str:
        # Rendered on demand: the hub adds custom_id and model after the adapter raised.
        return mask(self._render())

    def _render(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"{self.provider}/{self.model}" if self.model else self.provider)
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.custom_id:
            parts.append(f"request {self.custom_id!r}")
        where = f" ({', '.join(parts)})" if parts else ""
        return f"{self.kind}{where}: {self.provider_message}"


class RateLimitError(ProviderError):
    """Too many requests. ``retry_after`` is the wait in seconds the provider asked for."""

    retryable = True
    kind = "rate limited"


class ProviderUnavailable(ProviderError):
    """The provider is down or overloaded (5xx, connection refused or reset)."""

    retryable = True
    kind = "provider unavailable"


class CircuitOpen(ProviderUnavailable):
    """The circuit breaker of this provider and model is open after a run of failures:
    the call was not sent. ``retry_after`` is the time until a probe is let through.
    Not retried at the same provider; a group moves on to its next member at once."""

    retryable = False
    kind = "circuit open"


class Timeout(ProviderError):
    """The provider did not answer in time."""

    retryable = True
    kind = "timed out"


class MalformedResponse(ProviderError):
    """The provider answered something Relay cannot parse; retrying usually helps."""

    retryable = True
    kind = "malformed response"


class AuthenticationError(ProviderError):
    """The API key is missing, wrong, expired or lacks the rights for this call."""

    kind = "authentication failed"


class QuotaExceeded(ProviderError):
    """The account is out of credit or over its billing quota (OpenAI's
    ``insufficient_quota``, HTTP 402). Unlike a rate limit, waiting does not help: retry
    loops stop at once, while a fallback group still tries its next member."""

    kind = "quota exceeded"


class NotFoundError(ProviderError):
    """No such model, batch or resource at the provider."""

    kind = "not found"


class ContextWindowExceeded(ProviderError):
    """The request is longer than the model's context window."""

    kind = "context window exceeded"


class ContentPolicyError(ProviderError):
    """The provider refused the content under its usage policy."""

    kind = "content policy"


class InvalidRequestError(ProviderError):
    """The provider rejected the request as malformed; no retry or fallback will help."""

    kind = "invalid request"
