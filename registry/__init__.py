"""One plugin registry for encoders, losses and maskers.

Built-in plugins register themselves with :func:`register`, exactly as a
third-party package does. Third parties may also advertise a module (or a
callable) in the entry-point group ``astrojepa.plugins``; loading that entry
point is expected to call :func:`register`, or it may return/be a factory that
carries ``__plugin_kind__`` and ``__plugin_name__`` attributes.

A plugin may not take a name that is already registered unless it asks with
``register(..., override=True)``. An entry point that fails to load (an import
error, a refused name) is skipped with a warning and listed by :func:`broken`,
so one broken package does not break every command.

Public API relied upon by the CLI and by users::

    registry.names("loss")                  -> ["ijepa", "lejepa", ...]
    registry.create("loss", "sigreg", num_slices=256)
    registry.describe("encoder")            -> {name: one-line description}
    registry.broken()                       -> {entry point: why it did not load}
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

KINDS = ("encoder", "loss", "masker")
ENTRY_POINT_GROUP = "astrojepa.plugins"
_BUILTIN_MODULES = ("registry.encoders", "registry.losses", "registry.maskers")


class PluginError(ValueError):
    """A plugin cannot work with the given settings or data (bad input, reported as one line).

    Every error the registry and its built-in plugins raise is one of these."""


class UnknownPluginError(PluginError, LookupError):
    """An unknown plugin kind or name; the message lists the valid names."""


class UnknownOptionError(PluginError, TypeError):
    """An option the plugin's factory does not take; the message lists the ones it does."""


@dataclass(frozen=True)
class Plugin:
    kind: str
    name: str
    factory: Callable[..., Any]
    description: str

    def defaults(self) -> dict[str, Any]:
        """Keyword arguments of the factory with their default values."""
        params = inspect.signature(self.factory).parameters.values()
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def takes(self, option: str) -> bool:
        """Whether the factory takes keyword ``option`` (any keyword, if it takes ``**options``)."""
        params = inspect.signature(self.factory).parameters
        return option in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


_plugins: dict[str, dict[str, Plugin]] = {kind: {} for kind in KINDS}
_broken: dict[str, str] = {}
_loaded = False
log = logging.getLogger("registry")


def register(kind: str, name: str, description: str | None = None, override: bool = False):
    """Decorator that registers ``factory`` as plugin ``name`` of ``kind``.

    The description defaults to the first line of the factory's docstring. A name
    already taken (a built-in's, say) is refused unless ``override`` is true.
    """
    _check_kind(kind)

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        taken = _plugins[kind].get(name)
        if taken is not None and taken.factory is not factory and not override:
            raise PluginError(f"{kind} '{name}' is already registered by {taken.factory.__module__}; "
                              "pass override=True to register() to replace it")
        doc = description or (inspect.getdoc(factory) or "").split("\n")[0]
        _plugins[kind][name] = Plugin(kind, name, factory, doc)
        return factory

    return decorator


def names(kind: str) -> list[str]:
    """Sorted names of every registered plugin of ``kind``."""
    _check_kind(kind)
    _load_all()
    return sorted(_plugins[kind])


def get(kind: str, name: str) -> Plugin:
    """The plugin record; raises :class:`UnknownPluginError` with suggestions."""
    _check_kind(kind)
    _load_all()
    try:
        return _plugins[kind][name]
    except KeyError:
        valid = sorted(_plugins[kind])
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownPluginError(
            f"unknown {kind} '{name}'.{hint} Valid {kind}s: {', '.join(valid)}"
        ) from None


def create(kind: str, name: str, **options: Any) -> Any:
    """Build plugin ``name`` of ``kind`` with keyword overrides of its defaults.

    An option the factory does not take is an :class:`UnknownOptionError`, never dropped.
    """
    plugin = get(kind, name)
    unknown = sorted(option for option in options if not plugin.takes(option))
    if unknown:
        params = inspect.signature(plugin.factory).parameters.values()
        accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise UnknownOptionError(f"{kind} '{name}' has no option {', '.join(unknown)}; "
                                 f"it takes {', '.join(accepted) or 'no options'}")
    return plugin.factory(**options)


def describe(kind: str) -> dict[str, str]:
    """``{name: one-line description}`` for every plugin of ``kind``."""
    return {name: get(kind, name).description for name in names(kind)}


def broken() -> dict[str, str]:
    """Entry points of ``astrojepa.plugins`` that failed to load, with the reason for each."""
    _load_all()
    return dict(_broken)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownPluginError(f"unknown plugin kind '{kind}'. Valid kinds: {', '.join(KINDS)}")


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            kind = getattr(loaded, "__plugin_kind__", None)
            if kind is not None:
                register(kind, getattr(loaded, "__plugin_name__", entry.name))(loaded)
        except Exception as exc:  # a third party's bug must not break every command
            _broken[entry.name] = f"{entry.value}: {exc.__class__.__name__}: {exc}"
            log.warning("plugin '%s' failed to load and is skipped (%s)", entry.name, _broken[entry.name])
