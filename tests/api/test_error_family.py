"""Every error the library raises on purpose is a DiscordRolesError, keeps the built-in base host code
may already catch, and is importable from wherever it was imported before."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

from flask_discord_roles.discord import errors as discord_errors
from flask_discord_roles.errors import (
    ConfigurationError,
    Conflict,
    DiscordRolesError,
    NotFound,
    ValidationError,
)

PUBLIC_MODULES = (
    "flask_discord_roles",
    "flask_discord_roles.bots",
    "flask_discord_roles.celery",
    "flask_discord_roles.checkout",
    "flask_discord_roles.claim_codes",
    "flask_discord_roles.codes",
    "flask_discord_roles.customers",
    "flask_discord_roles.deliveries",
    "flask_discord_roles.diagnostics",
    "flask_discord_roles.discord",
    "flask_discord_roles.errors",
    "flask_discord_roles.guilds",
    "flask_discord_roles.orders",
    "flask_discord_roles.signals",
    "flask_discord_roles.store_settings",
    "flask_discord_roles.tokens",
)

DISCORDS_OWN = {value for value in vars(discord_errors).values() if inspect.isclass(value)}
"""Errors from Discord itself: they belong to the ``discord`` package, which knows nothing of ours."""


def _exported_errors(module: ModuleType) -> dict[str, type[BaseException]]:
    names = getattr(module, "__all__", None)
    if names is None:  # a module without __all__: what it shows without a leading underscore
        names = [name for name in vars(module) if not name.startswith("_")]
    return {
        name: value
        for name in names
        if inspect.isclass(value := getattr(module, name)) and issubclass(value, BaseException)
    }


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_error_a_public_module_exports_is_a_discord_roles_error(module_name: str) -> None:
    module = importlib.import_module(module_name)
    outside = [
        name
        for name, error in _exported_errors(module).items()
        if error not in DISCORDS_OWN and not issubclass(error, DiscordRolesError)
    ]
    assert outside == [], f"{module_name} exports errors outside DiscordRolesError: {outside}"


# (old import path, name, the family member it must be, the built-in base it always had)
ERRORS = [
    ("flask_discord_roles.deliveries", "DeliveryNotFound", NotFound, LookupError),
    ("flask_discord_roles._core.deliveries", "DeliveryNotFound", NotFound, LookupError),
    ("flask_discord_roles.guilds", "MappingNotFound", NotFound, LookupError),
    ("flask_discord_roles._core.mappings", "MappingNotFound", NotFound, LookupError),
    ("flask_discord_roles.guilds", "GuildNotLinked", NotFound, LookupError),
    ("flask_discord_roles._core.guild_admin", "GuildNotLinked", NotFound, LookupError),
    ("flask_discord_roles.bots", "BotNotConfigured", NotFound, LookupError),
    ("flask_discord_roles._core.bots", "BotNotConfigured", NotFound, LookupError),
    ("flask_discord_roles.guilds", "DuplicateMapping", Conflict, Exception),
    ("flask_discord_roles._core.mappings", "DuplicateMapping", Conflict, Exception),
    ("flask_discord_roles._core.linking", "AccountTaken", Conflict, Exception),
    ("flask_discord_roles.guilds", "BotUnavailable", DiscordRolesError, Exception),
    ("flask_discord_roles._core.guild_admin", "BotUnavailable", DiscordRolesError, Exception),
    ("flask_discord_roles.claim_codes", "ClaimCodeSecretMissing", ConfigurationError, RuntimeError),
    ("flask_discord_roles._core.claim_codes", "ClaimCodeSecretMissing", ConfigurationError, RuntimeError),
    ("flask_discord_roles._runtime.crypto", "EncryptionKeyError", ConfigurationError, ValueError),
    ("flask_discord_roles._runtime.crypto", "DecryptionError", DiscordRolesError, Exception),
    ("flask_discord_roles", "InvalidOrderEvent", DiscordRolesError, ValueError),
    ("flask_discord_roles.orders", "InvalidOrderEvent", DiscordRolesError, ValueError),
    ("flask_discord_roles", "ValidationError", ValidationError, ValueError),
    ("flask_discord_roles.customers", "ValidationError", ValidationError, ValueError),
    ("flask_discord_roles.deliveries", "ValidationError", ValidationError, ValueError),
    ("flask_discord_roles.tokens", "ValidationError", ValidationError, ValueError),
    ("flask_discord_roles", "ConfigurationError", ConfigurationError, RuntimeError),
    ("flask_discord_roles", "NotFound", NotFound, LookupError),
    ("flask_discord_roles", "Conflict", Conflict, Exception),
]


@pytest.mark.parametrize(("module_name", "name", "family", "builtin"), ERRORS)
def test_an_error_keeps_its_import_path_its_builtin_base_and_joins_the_family(
    module_name: str, name: str, family: type[Exception], builtin: type[Exception]
) -> None:
    error = getattr(importlib.import_module(module_name), name, None)
    assert error is not None, f"{name} is no longer importable from {module_name}"
    assert issubclass(error, family), f"{module_name}.{name} is not a {family.__name__}"
    assert issubclass(error, builtin), f"{module_name}.{name} lost its {builtin.__name__} base"


@pytest.mark.parametrize("name", sorted({name for _, name, _, _ in ERRORS}))
def test_every_import_path_of_an_error_gives_the_same_class(name: str) -> None:
    found = {
        module_name: getattr(importlib.import_module(module_name), name)
        for module_name, error_name, _, _ in ERRORS
        if error_name == name
    }
    assert len(set(found.values())) == 1, f"{name} is a different class depending on the path: {found}"


def test_the_deprecated_configuration_error_path_gives_the_same_class() -> None:
    with pytest.warns(DeprecationWarning, match="import it from flask_discord_roles"):
        from flask_discord_roles.config import ConfigurationError as old
    assert old is ConfigurationError


def test_discord_errors_stay_discords_own() -> None:
    # The discord package knows nothing of ours: its errors are not DiscordRolesErrors.
    assert not any(issubclass(error, DiscordRolesError) for error in DISCORDS_OWN)
