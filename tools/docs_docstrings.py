"""A griffe extension (named in mkdocs.yml) for the API reference: the Sphinx roles of
Relay's docstrings (``:class:`Hub```, ``:meth:`.stores```) become links to the names'
entries, an overriding method without a docstring takes the one it overrides, and a
plugin's hook implementation without one links the hook's specification."""

from __future__ import annotations

import re
from typing import Any

try:
    from griffe import Docstring, Extension, NameResolutionError
except ImportError:  # the hook and public_api() run without griffe too
    Extension = object  # type: ignore[assignment,misc]
    NameResolutionError = LookupError  # type: ignore[assignment,misc]


ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")
TITLED = re.compile(r"(.*?)\s*<([^<>]+)>")


def _role(obj: Any, match: re.Match[str]) -> str:
    short, written = match.groups()
    titled = TITLED.fullmatch(written.strip())
    title, name = titled.groups() if titled else (None, written.strip())
    name = name.removesuffix("()")
    shown = title or (name.rsplit(".", 1)[-1] if short else written.strip())
    if name.startswith("."):  # a module beside this one (:mod:`.stores`)
        module = obj.module
        package = module.path if module.is_init_module else module.path.rpartition(".")[0]
        return _autoref(package + name, shown)
    # Resolved where the docstring is (Hub, Hub.run_tools), else taken as a full path.
    first, dot, rest = name.partition(".")
    try:
        target = obj.resolve(first) + dot + rest
    except NameResolutionError:
        if not dot:
            return f"`{shown}`"
        target = name
    return _autoref(target, shown)


def _autoref(target: str, shown: str) -> str:
    # optional: a link when the target is documented, plain code (no warning) when it
    # is internal, as mkdocstrings' own links in signatures are.
    return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'


def _rewrite(obj: Any) -> None:
    if obj.docstring is not None:
        text = ROLE.sub(lambda match: _role(obj, match), obj.docstring.value)
        # reST's "text::" before a literal block: Markdown reads the block as code.
        obj.docstring.value = re.sub(r"(\S)::$", r"\1:", text, flags=re.MULTILINE)
    for member in obj.members.values():
        if not member.is_alias:
            _rewrite(member)


def hook_names() -> frozenset[str]:
    """The hooks ``relay_core.hookspecs`` specifies: a method of one of these names on a
    plugin class is that hook's implementation, documented by the specification."""
    import relay_core.hookspecs

    return frozenset(name for name in vars(relay_core.hookspecs) if name.startswith("relay_"))


def _implements(name: str) -> str:
    spec = f"relay_core.hookspecs.{name}"
    return f"Implements the {_autoref(spec, name)} hook."


def _inherit(obj: Any, hooks: frozenset[str]) -> None:
    """An overriding method without a docstring (an adapter's ``chat``) takes the one of
    the method it overrides, as Python's ``inspect.getdoc`` does; a hook implementation
    without one (``relay_audit`` on a plugin class) points to the hook's specification."""
    for member in obj.members.values():
        if member.is_alias:
            continue
        if member.is_class:
            try:
                bases = member.mro()
            except Exception:  # a base griffe cannot load (another package): nothing to take
                bases = []
            for name, method in member.members.items():
                if method.is_alias or method.docstring is not None or name.startswith("_"):
                    continue
                for base in bases:
                    found = base.members.get(name)
                    if found is not None and not found.is_alias and found.docstring is not None:
                        method.docstring = Docstring(found.docstring.value, parent=method)
                        break
                else:
                    if name in hooks:
                        method.docstring = Docstring(_implements(name), parent=method)
        if member.is_module or member.is_class:
            _inherit(member, hooks)


class SphinxRoles(Extension):
    """Turns ``:class:`Hub``` and the other Sphinx roles of Relay's docstrings into
    links to the names' reference entries, resolved where the docstring is; then gives
    an overriding method without a docstring the one it overrides, and a hook
    implementation without one a link to the hook."""

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        _rewrite(pkg)
        _inherit(pkg, hook_names())
