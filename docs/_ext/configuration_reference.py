"""The configuration reference, in Markdown, from the one table every setting is described in.

``SETTINGS`` in ``flask_discord_roles/_runtime/config.py`` gives each ``DISCORD_ROLES_*`` key its default and
its description; ``init_app`` applies the same rows, so the page cannot list a setting the code lacks. Each
key is a ``py:data`` entry, as Flask documents its own settings, so pages can link to it.
"""

from __future__ import annotations

from flask_discord_roles._runtime.config import SETTINGS


def reference() -> str:
    return "\n".join(
        f"```{{py:data}} {setting.key}\n\n{setting.description}\n\nDefault: {setting.default_in_words}\n```\n"
        for setting in SETTINGS
    )
