"""The ``relay`` command line.

Exit codes: 0 success, 1 a call failed (provider error, guardrail), 2 bad usage or a bad
catalog. The catalog is ``--config``, else ``$RELAY_CONFIG``, else ``./relay.yaml`` when
it exists, else empty (bare ``provider/model`` names still work). Plugins add commands
through the ``relay_register_commands`` hook.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from relay_core._builtin import keyring_unavailable
from relay_core.config import Catalog, GroupConfig, load_catalog
from relay_core.credentials import resolve_api_key
from relay_core.errors import (
    BatchInputError,
    ConfigError,
    CredentialError,
    JobNotFound,
    PluginNotInstalled,
    ProviderConflict,
    RelayError,
    WorkspaceError,
)
from relay_core.log import configure_logging
from relay_core.plugins import PluginRegistry, PluginWarning, ProviderEntry
from relay_core.providers import Capability
from relay_core.schema import catalog_schema
from relay_core.sections import check_sections, raise_all
from relay_core.serialize import unstructure
from relay_core.types import EndEvent, TextDelta

__all__ = ["catalog_path", "cli", "main", "with_plugins"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_USAGE = 2


def catalog_path(own: str | None = None) -> str | None:
    """The catalog a ``relay`` command reads: ``own`` (a plugin command's own
    ``--config``), else ``relay --config``, else ``$RELAY_CONFIG``, else ``./relay.yaml``
    when it exists; ``None`` for none. Plugin commands call it so that every command
    finds the same catalog."""
    if own:
        return own
    context = click.get_current_context(silent=True)
    root = context.find_root() if context is not None else None
    for candidate in (root.params.get("config") if root else None, os.environ.get("RELAY_CONFIG")):
        if candidate:
            return str(candidate)
    return "relay.yaml" if Path("relay.yaml").exists() else None


class _State:
    def __init__(self, config: str | None) -> None:
        self.config_path = config
        self._catalog: Catalog | None = None
        self.plugins = _registry()

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            path = catalog_path(self.config_path)
            self._catalog = load_catalog(path) if path else Catalog()
        return self._catalog

    def plugin_entry(self, provider: str) -> ProviderEntry:
        """The registered provider behind a target's provider name (a catalog key may name
        another plugin with ``plugin:``); :class:`PluginNotInstalled` when none has it."""
        return self.plugins.provider(self.catalog.plugin_of(provider))

    def hub(self) -> Any:
        from relay_core.hub import Hub

        return Hub(self.catalog, plugins=self.plugins)


_shared_registry: PluginRegistry | None = None


def _registry() -> PluginRegistry:
    global _shared_registry
    if _shared_registry is None:
        _shared_registry = PluginRegistry()
    return _shared_registry


def _fail(error: RelayError) -> NoReturn:
    # Bad input (a request file's line, a job id, a workspace path) is bad usage too:
    # running the same command again cannot succeed.
    usage = isinstance(
        error, (ConfigError, PluginNotInstalled, BatchInputError, JobNotFound, WorkspaceError)
    )
    if isinstance(error, ConfigError) and error.location:
        # The shape compilers use, which editors and CI annotate.
        for each in (error, *error.also):
            click.echo(f"{each.location}: error: {each.reason}", err=True)
    else:
        click.echo(f"error: {error}", err=True)
    sys.exit(EXIT_USAGE if usage else EXIT_FAILURE)


def _handles_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RelayError as error:
            _fail(error)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Catalog file (default: $RELAY_CONFIG, else ./relay.yaml if present).",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default=None,
    help="Log to stderr in this format.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="relay-core", prog_name="relay")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_format: str | None, verbose: int) -> None:
    """Relay: one interface to every LLM provider."""
    ctx.obj = _State(config)
    if log_format or verbose:
        level = "DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING"
        configure_logging(log_format or "console", level)


def _state() -> _State:
    state: _State = click.get_current_context().find_object(_State)  # type: ignore[assignment]
    return state


# ---------------------------------------------------------------------------- catalog


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--no-credentials", is_flag=True, help="Do not resolve credential references.")
@click.option(
    "--strict",
    is_flag=True,
    help="Treat warnings (an unset API key variable, an optional plugin) as errors.",
)
@_handles_errors
def validate(file: str | None, no_credentials: bool, strict: bool) -> None:
    """Check a catalog: syntax, fields, references, plugins, credentials.

    Every mistake found is listed, as file:line:column; the exit code is 2 when there
    is one.
    """
    state = _state()
    if file:
        state.config_path = file
    catalog = state.catalog
    errors, warnings = _check_providers(state, catalog, credentials=not no_credentials)
    section_errors, section_warnings = check_sections(catalog, state.plugins, deep=True)
    errors += section_errors
    warnings += section_warnings
    if strict:
        errors, warnings = errors + warnings, []
    for warning in sorted(warnings, key=_position):
        click.echo(f"{warning.location or warning.file}: warning: {warning.reason}", err=True)
    raise_all(sorted(errors, key=_position))
    # Plugins with settings check theirs (plugins.<name>) as a hub's first call would.
    state.hub().configure_plugins()
    noted = f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''}" if warnings else ""
    click.echo(
        f"{catalog.path or '(no catalog)'}: ok — {len(catalog.models)} models, "
        f"{len(catalog.groups)} groups, {len(catalog.providers)} providers{noted}"
    )


def _position(error: ConfigError) -> tuple[int, int]:
    return (error.line or 0, error.column or 0)


def _check_providers(
    state: _State, catalog: Catalog, *, credentials: bool
) -> tuple[list[ConfigError], list[ConfigError]]:
    """Errors and warnings about the providers the catalog uses: each installed, each
    credential reference resolvable, each key variable a provider falls back on set."""
    used: dict[str, tuple[str | int, ...]] = {}
    for alias, model in catalog.models.items():
        used.setdefault(model.provider, ("models", alias, "target"))
    for group_name, group in catalog.groups.items():
        for index, member in enumerate(group.members):
            if member not in catalog.models and member not in catalog.groups:
                used.setdefault(member.partition("/")[0], ("groups", group_name, "members", index))
    for name in catalog.providers:
        used[name] = ("providers", name)
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    for name, at in used.items():
        config = catalog.providers.get(name)
        try:
            entry = state.plugin_entry(name)
        except (PluginNotInstalled, ProviderConflict) as error:
            errors.append(catalog.error(str(error), at))
            continue
        if not credentials:
            continue
        if config is not None and config.api_key is not None:
            try:
                resolve_api_key(
                    name,
                    config.api_key,
                    state.plugins,
                    where=catalog.where((*at, "api_key")),
                    private_files=catalog.defaults.strict_credential_files,
                )
            except ConfigError as error:
                errors.append(error)
            continue
        try:
            env = entry.defaults.get("api_key_env", entry.load().api_key_env)
        except ConfigError as error:
            errors.append(catalog.error(error.reason, at))
            continue
        if env and not os.environ.get(env):
            warnings.append(
                catalog.error(
                    f"provider {name!r} needs an API key and {env} is not set: set it, or "
                    f"give providers.{name}.api_key as a reference",
                    at,
                )
            )
    return errors, warnings


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def schema(output: str | None) -> None:
    """Print the catalog's JSON Schema (for editors)."""
    text = json.dumps(catalog_schema(), indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@cli.group()
def models() -> None:
    """The catalog's model aliases and groups."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_handles_errors
def models_list(as_json: bool) -> None:
    """List aliases with their targets and the plugin that serves each."""
    state = _state()
    catalog = state.catalog
    rows: list[dict[str, Any]] = []
    for alias, model in sorted(catalog.models.items()):
        row: dict[str, Any] = {
            "alias": alias,
            "kind": "model",
            "target": model.target,
            "description": model.description or "",
        }
        try:
            row |= {"plugin": state.plugin_entry(model.provider).plugin, "installed": True}
        except (PluginNotInstalled, ProviderConflict) as missing:
            # Only a plain "not installed" has something to pip install: a blocked or
            # broken plugin is installed already, and a typo's distribution is unknown.
            install = missing.distribution if type(missing) is PluginNotInstalled else None
            row |= {"plugin": None, "installed": False, "install": install, "why": str(missing)}
        rows.append(row)
    rows += [
        {"alias": alias, "kind": g.strategy, "target": ", ".join(g.members), "description": ""}
        for alias, g in sorted(catalog.groups.items())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no aliases in the catalog; use provider/model names directly")
        return
    width = max(len(r["alias"]) for r in rows)
    for row in rows:
        kind = "" if row["kind"] == "model" else f"[{row['kind']}] "
        served = ""
        if row["kind"] == "model":
            if row["installed"]:
                served = f"({row['plugin']})"
            elif row["install"]:
                served = f"(not installed: pip install {row['install']})"
            else:
                served = f"({row['why']})"
        pieces = [f"{row['alias']:<{width}}", f"{kind}{row['target']}", served, row["description"]]
        click.echo("  ".join(piece for piece in pieces if piece))


@models.command("inspect")
@click.argument("alias")
@_handles_errors
def models_inspect(alias: str) -> None:
    """Show everything Relay knows about an alias."""
    state = _state()
    config = state.catalog.lookup(alias)
    info: dict[str, Any] = {"alias": alias, **unstructure(config)}
    if not isinstance(config, GroupConfig):
        entry = state.plugin_entry(config.provider)
        adapter = entry.load()
        info["plugin"] = entry.plugin
        info["capabilities"] = sorted(str(c) for c in adapter.capabilities)
        info["prompt_caching"] = adapter.prompt_caching
        hub = state.hub()
        quoted = hub.get(alias).quote()
        info["price"] = unstructure(quoted.price) if quoted.price else None
        info["price_source"] = quoted.tier
    click.echo(json.dumps(info, indent=2, default=str))


# ---------------------------------------------------------------------------- auth


@cli.group()
def auth() -> None:
    """API keys in the system keyring, for catalogs that say keyring:SERVICE/USER."""


@auth.command("set")
@click.argument("provider")
@click.option("--service", default="relay", show_default=True, help="Keyring service name.")
@click.option("--user", help="Keyring user name (default: the provider's name).")
@_handles_errors
def auth_set(provider: str, service: str, user: str | None) -> None:
    """Store PROVIDER's API key in the system keyring.

    The key is read without echo (or from standard input when it is not a terminal),
    never printed, and never written to a file by Relay. The command prints the
    reference to put in the catalog.
    """
    import keyring
    import keyring.errors

    user = user or provider
    if sys.stdin.isatty():
        value = click.prompt(f"{provider} API key", hide_input=True, confirmation_prompt=False)
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise click.UsageError("no key given; nothing stored")
    try:
        keyring.set_password(service, user, value)
    except keyring.errors.NoKeyringError:
        raise CredentialError(keyring_unavailable("the key cannot be stored")) from None
    except keyring.errors.KeyringError as error:
        # The message names the backend's trouble, never the value.
        click.echo(f"error: the keyring refused the key: {type(error).__name__}", err=True)
        sys.exit(EXIT_FAILURE)
    reference = f"keyring:{service}/{user}"
    click.echo(f"stored; in the catalog: providers.{provider}.api_key: {reference}")


@auth.command("delete")
@click.argument("provider")
@click.option("--service", default="relay", show_default=True, help="Keyring service name.")
@click.option("--user", help="Keyring user name (default: the provider's name).")
@_handles_errors
def auth_delete(provider: str, service: str, user: str | None) -> None:
    """Remove PROVIDER's API key from the system keyring."""
    import keyring
    import keyring.errors

    try:
        keyring.delete_password(service, user or provider)
    except keyring.errors.NoKeyringError:
        raise CredentialError(keyring_unavailable("no key can be deleted")) from None
    except keyring.errors.PasswordDeleteError:
        click.echo(f"error: no key for keyring:{service}/{user or provider}", err=True)
        sys.exit(EXIT_FAILURE)
    except keyring.errors.KeyringError as error:
        click.echo(f"error: the keyring refused: {type(error).__name__}", err=True)
        sys.exit(EXIT_FAILURE)
    click.echo(f"deleted keyring:{service}/{user or provider}")


# ---------------------------------------------------------------------------- plugins


_TABLE_BEGIN = "<!-- providers:begin (generated by `relay providers --update docs/index.md`) -->"
_TABLE_END = "<!-- providers:end -->"


def _provider_rows() -> list[dict[str, Any]]:
    registry = _state().plugins
    distributions = {info.name: info.distribution for info in registry.plugins()}
    rows: list[dict[str, Any]] = []
    for name, entry in sorted(registry.providers().items()):
        adapter = entry.load()
        env = entry.defaults.get("api_key_env", adapter.api_key_env)
        rows.append(
            {
                "provider": name,
                "plugin": entry.plugin,
                "distribution": distributions.get(entry.plugin),
                "capabilities": sorted(str(c) for c in adapter.capabilities),
                "prompt_caching": adapter.prompt_caching,
                "key": env or "",
                "key_set": bool(env and os.environ.get(env)) if env else None,
            }
        )
    return rows


def _provider_table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table of providers and what each declares it can do."""
    columns = list(Capability)
    header = ["provider", "install", *(str(c).replace("_", " ") for c in columns), "key"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        marks = ["✓" if str(c) in row["capabilities"] else "—" for c in columns]
        install = f"`{row['distribution']}`" if row["distribution"] else "built in"
        key = f"`{row['key']}`" if row["key"] else "none"
        lines.append("| " + " | ".join([f"`{row['provider']}`", install, *marks, key]) + " |")
    return "\n".join(lines)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--markdown", is_flag=True, help="Print a Markdown table of capabilities.")
@click.option(
    "--update",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Rewrite the table between the provider markers of this Markdown file.",
)
@_handles_errors
def providers(as_json: bool, markdown: bool, update: Path | None) -> None:
    """List the providers the installed plugins offer, with their capabilities."""
    rows = _provider_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if markdown or update:
        table = _provider_table(rows)
        if update is None:
            click.echo(table)
            return
        text = update.read_text(encoding="utf-8")
        before, begin, rest = text.partition(_TABLE_BEGIN)
        _, end, after = rest.partition(_TABLE_END)
        if not begin or not end:
            raise click.ClickException(
                f"{update} has no {_TABLE_BEGIN!r} ... {_TABLE_END!r} markers"
            )
        update.write_text(f"{before}{begin}\n{table}\n{end}{after}", encoding="utf-8")
        click.echo(f"{update}: {len(rows)} providers")
        return
    for row in rows:
        key = (
            "no key needed"
            if not row["key"]
            else (f"{row['key']} {'set' if row['key_set'] else 'not set'}")
        )
        click.echo(f"{row['provider']}  ({row['plugin']}; {key})  {', '.join(row['capabilities'])}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@_handles_errors
def plugins(as_json: bool) -> None:
    """List installed plugins, their distributions and the hooks they implement."""
    infos = _state().plugins.plugins()
    if as_json:
        click.echo(json.dumps([unstructure(i) for i in infos], indent=2))
        return
    for info in infos:
        dist = f"{info.distribution} {info.version}" if info.distribution else "built in"
        if info.status in ("broken", "blocked"):
            label = "BROKEN" if info.status == "broken" else "not loaded"
            click.echo(f"{info.name}  ({dist})  {label}: {info.reason}")
            continue
        click.echo(f"{info.name}  ({dist})  {', '.join(info.hooks)}")
        if info.status == "conflict":
            click.echo(f"    conflict: {info.reason}")


# ---------------------------------------------------------------------------- calls


@cli.command()
@click.argument("alias")
@click.argument("prompt")
@click.option("-s", "--system", help="System prompt.")
@click.option("--stream", is_flag=True, help="Print the answer as it arrives.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole response as JSON.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Generation setting, e.g. -p temperature=0.2 (value parsed as JSON).",
)
@click.option(
    "-t",
    "--toolset",
    "toolsets",
    multiple=True,
    metavar="NAME",
    help="Run the tool loop with this toolset (an MCP server of the catalog...); repeatable.",
)
@click.option("--max-steps", default=8, show_default=True, help="Model calls of the tool loop.")
@_handles_errors
def chat(
    alias: str,
    prompt: str,
    system: str | None,
    stream: bool,
    as_json: bool,
    params: tuple[str, ...],
    toolsets: tuple[str, ...],
    max_steps: int,
) -> None:
    """Send PROMPT to ALIAS (an alias or provider/model) and print the answer.

    PROMPT "-" reads the prompt from standard input: text, or a JSON list of messages
    (OpenAI's or Anthropic's form, or an object with "messages", as a Chat Completions
    body has). With --toolset, the model may call the toolsets' tools: each tool run is
    listed on standard error.
    """
    conversation: Any = prompt
    if prompt == "-":
        conversation = _stdin_prompt(sys.stdin.read())
    options: dict[str, Any] = {"system": system} if system else {}
    if isinstance(conversation, list):
        options["messages"], conversation = conversation, None
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--param takes KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    with _state().hub() as hub:
        if toolsets:
            if stream:
                raise click.UsageError("--stream does not apply to the tool loop (--toolset)")
            response = hub.run_tools(
                alias, conversation, toolsets=list(toolsets), max_steps=max_steps, **options
            )
            for number, step in enumerate(response.steps, 1):
                for run in step.runs:
                    mark = "error" if run.result.is_error else "ok"
                    click.echo(
                        f"[step {number}] {run.toolset}.{run.tool}"
                        f"({json.dumps(run.call.arguments)}) {mark}",
                        err=True,
                    )
            if response.metadata["tool_loop"]["stopped"] == "max_steps":
                click.echo(f"stopped after {max_steps} model calls (--max-steps)", err=True)
        elif stream and not as_json:
            for event in hub.stream(alias, conversation, **options):
                if isinstance(event, TextDelta):
                    click.echo(event.text, nl=False)
                elif isinstance(event, EndEvent):
                    click.echo()
            return
        elif stream:
            for event in hub.stream(alias, conversation, **options):
                click.echo(json.dumps(unstructure(event) | {"type": event.TAG}))
            return
        else:
            response = hub.chat(alias, conversation, **options)
    if as_json:
        click.echo(json.dumps(unstructure(response), indent=2, default=str))
    else:
        click.echo(response.text or json.dumps([unstructure(c) for c in response.tool_calls]))


def _stdin_prompt(text: str) -> Any:
    """What ``relay chat ALIAS -`` read: a list of messages when the text is JSON of
    one (a list of objects, or an object with ``messages``), else the text itself."""
    if not text.lstrip().startswith(("[", "{")):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text  # a prompt that merely starts with a bracket
    if isinstance(value, dict) and "messages" in value:
        return value["messages"]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value
    return text


@cli.command()
@_handles_errors
def demo() -> None:
    """A tour on the offline mock provider: chat, streaming, tools, structured output."""
    from relay_core._demo import run_demo

    run_demo(click.echo, plugins=_state().plugins)


# Commands Relay's own plugins add: named here so that a user without the plugin is told
# what to install instead of "No such command".
_PLUGIN_COMMANDS = {"serve": "relay-serve", "dashboard": "relay-dashboard"}


def _add_plugin_commands() -> None:
    # A broken plugin must not take the whole command line down with it: say so, go on.

    try:
        registry = _registry()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PluginWarning)
            registry.load()
        for warning in caught:
            if issubclass(warning.category, PluginWarning):
                # One line a person reads, not Python's file:line warning format.
                click.echo(f"warning: {warning.message}", err=True)
            else:
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        registry.hook.relay_register_commands(cli=cli)
    except RelayError as error:
        click.echo(f"warning: {error}", err=True)
    for name, distribution in _PLUGIN_COMMANDS.items():
        if name not in cli.commands:
            cli.add_command(_not_installed(name, distribution))


def _not_installed(name: str, distribution: str) -> click.Command:
    def explain() -> None:
        click.echo(
            f"error: `relay {name}` comes with the {distribution} plugin: "
            f"pip install {distribution}",
            err=True,
        )
        sys.exit(EXIT_USAGE)

    return click.Command(
        name,
        callback=explain,
        help=f"(not installed: pip install {distribution})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


# The browsing commands (models compare/recommend, catalog, pricing) and the batch
# commands live in modules of their own, which attach them to the groups above.
from relay_core import _cli_batch, _cli_browse  # noqa: E402, F401


def with_plugins() -> click.Group:
    """The ``relay`` group with the commands installed plugins add (``relay serve``,
    ``relay dashboard``...), as ``relay`` runs it; the site's command reference is built
    from it. Calling it again adds nothing new."""
    _add_plugin_commands()
    return cli


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    with_plugins()
    cli.main(args=argv, prog_name="relay")
