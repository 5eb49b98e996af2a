"""Refuse a change to a ``DISCORD_ROLES_*`` setting after ``init_app`` read it, instead of ignoring it.

``init_app`` validates the settings once and builds clients, executors and routes from them; a later
``app.config[key] = value`` would change nothing, silently (a test pointing the app at FakeDiscord too
late would reach the real Discord). So ``init_app`` gives ``app.config`` a subclass of its own class whose
writes refuse a changed setting. Reading the config costs what it did: only writes are checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask.config import Config

from flask_discord_roles._runtime.config import DEFAULTS
from flask_discord_roles.errors import ConfigurationError

_MISSING = object()


def _refusal(key: str) -> ConfigurationError:
    # The value is never shown: it may be a key or a token.
    return ConfigurationError(
        f"{key} cannot be changed after init_app: flask-discord-roles reads its settings once, when "
        "DiscordRoles(app) or discord_roles.init_app(app) runs, so the new value would be ignored. Set it "
        "before that, in the config (or the environment) the app is built with; in a test, in the app "
        "factory's test config (DISCORD_ROLES_API_BASE_URL = fake_discord.api_base_url, for one)."
    )


def _same(current: Any, value: Any) -> bool:
    try:
        return current is value or bool(current == value)
    except Exception:  # a value whose == fails is not the same value
        return False


class SettingsGuard(dict[str, Any]):
    """Mixed into the class of an initialised app's config: every write goes through :meth:`_check`."""

    def _check(self, key: object, value: Any = _MISSING) -> None:
        if key not in DEFAULTS or key not in self:
            return
        if value is _MISSING or not _same(self[key], value):
            raise _refusal(str(key))

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key, value)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check(key)
        super().__delitem__(key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        changes = dict(*args, **kwargs)
        for key, value in changes.items():  # all checked before any is written
            self._check(key, value)
        super().update(changes)

    def __ior__(self, other: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> SettingsGuard:  # type: ignore[override,misc]
        self.update(other)
        return self

    def pop(self, key: str, *default: Any) -> Any:
        self._check(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        if self:
            self._check(next(reversed(self)))
        return super().popitem()

    def clear(self) -> None:
        for key in self:
            self._check(key)
        super().clear()


_guarded_classes: dict[type[Config], type[Config]] = {}


def guard_settings(config: Config) -> None:
    """From now on, refuse a write that would change one of ``config``'s ``DISCORD_ROLES_*`` settings."""
    kind = type(config)
    if issubclass(kind, SettingsGuard):
        return
    guarded = _guarded_classes.get(kind)
    if guarded is None:
        # A subclass of the app's own config class (Flask's, or the host's), so nothing else changes.
        guarded = type(kind.__name__, (SettingsGuard, kind), {"__module__": kind.__module__})
        _guarded_classes[kind] = guarded
    config.__class__ = guarded
