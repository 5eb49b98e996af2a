"""The configuration reference, in Markdown, from the one table every setting is described in.

``SETTINGS`` in ``flask_discord_roles/_runtime/config.py`` gives each ``DISCORD_ROLES_*`` key its default and
its description; ``init_app`` applies the same rows, so the page cannot list a setting the code lacks.
"""

from __future__ import annotations

from flask_discord_roles._runtime.config import markdown_table


def reference() -> str:
    return markdown_table()
