"""Configuration is described once: the ``SETTINGS`` table in ``flask_discord_roles/_runtime/config.py``.

``init_app`` applies its defaults, the docs' configuration page is generated from it when the docs are
built (no committed copy that could go stale; tests/docs checks the page covers every setting), and every
``DISCORD_ROLES_*`` key the code or its docstrings name must be one of its rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask_discord_roles import DiscordRoles
from flask_discord_roles._runtime.config import DEFAULTS, SETTINGS

ROOT = Path(__file__).parent.parent
KEY = re.compile(r"\bDISCORD_ROLES_[A-Z0-9_]*[A-Z0-9]\b")


def test_the_readme_points_at_the_generated_reference_instead_of_keeping_a_copy() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    copied = [setting.key for setting in SETTINGS if f"| `{setting.key}` |" in readme]
    assert not copied, (
        f"README.md keeps rows of the configuration table ({copied}); the table is generated into "
        "docs/configuration.md when the docs are built: link there instead"
    )
    assert "docs/configuration.md" in readme, "README.md links to the configuration page"


def test_each_setting_is_listed_once_with_a_description() -> None:
    keys = [setting.key for setting in SETTINGS]
    assert len(keys) == len(set(keys)), (
        f"a setting is listed twice: {sorted(k for k in keys if keys.count(k) > 1)}"
    )
    assert list(DEFAULTS) == keys, "DEFAULTS is made from SETTINGS, in its order"
    for setting in SETTINGS:
        assert setting.key.startswith("DISCORD_ROLES_"), (
            f"{setting.key}: every key starts with DISCORD_ROLES_"
        )
        assert setting.description.endswith("."), f"{setting.key}: say what it does, in a sentence"
        assert "|" not in setting.description, f"{setting.key}: a | would break the README's table"


def _keys_named_in(folder: Path) -> dict[str, list[str]]:
    """Each DISCORD_ROLES_* key written in a Python file under ``folder``, with where it is written."""
    named: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for key in KEY.findall(line):
                named.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{number}")
    return named


def test_every_key_the_code_reads_or_mentions_is_a_setting() -> None:
    named = _keys_named_in(ROOT / "flask_discord_roles") | _keys_named_in(ROOT / "example_app")
    unknown = {key: places for key, places in named.items() if key not in DEFAULTS}
    assert not unknown, (
        "keys read or documented in the code but missing from SETTINGS in "
        f"flask_discord_roles/_runtime/config.py (add a row; the docs' configuration page follows): {unknown}"
    )


def test_every_setting_is_read_somewhere() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "flask_discord_roles").rglob("*.py")
    )
    # Once in its own row of SETTINGS; a key written nowhere else in quotes is read by nobody.
    unread = [key for key in DEFAULTS if source.count(f'"{key}"') < 2]
    assert not unread, f"settings nobody reads (drop their rows, or read them): {unread}"


def test_the_extension_docstring_names_only_real_settings_and_points_at_the_reference() -> None:
    docstring = DiscordRoles.__doc__ or ""
    named = set(KEY.findall(docstring))
    assert named <= set(DEFAULTS), (
        f"DiscordRoles' docstring names settings that do not exist: {named - set(DEFAULTS)}"
    )
    assert "*Configuration* page" in docstring, (
        "DiscordRoles' docstring must say where the settings are listed: the docs' *Configuration* page"
    )


def test_init_app_applies_every_default(make_app: Any) -> None:
    app, _, _ = make_app("sqlite://")
    given = {"DISCORD_ROLES_ENCRYPTION_KEYS", "DISCORD_ROLES_EXECUTOR"}  # the test app sets these
    wrong = {
        setting.key: app.config.get(setting.key, "<missing>")
        for setting in SETTINGS
        if setting.key not in given and app.config.get(setting.key, "<missing>") != setting.default
    }
    assert not wrong, f"init_app left these settings without their default: {wrong}"
