"""Our slash commands as Discord registers them: the one place their names, options and rights live.

Registered globally with a bulk overwrite (the full list replaces whatever the application had), for
servers only (``contexts: [0]``). ``/link`` is for server managers: Discord hides it from members
without Manage Server (``default_member_permissions``), and the webhook checks the permission again,
because a server's admins can change who sees a command.
"""

from __future__ import annotations

from typing import Any

from flask_discord_roles.discord.permissions import MANAGE_GUILD

__all__ = ["COMMANDS", "GUILD_CONTEXT", "GUILD_INSTALL", "STRING_OPTION", "command_definitions"]

STRING_OPTION = 3
GUILD_CONTEXT = 0
GUILD_INSTALL = 0

COMMANDS: tuple[dict[str, Any], ...] = (
    {
        "name": "claim",
        "type": 1,
        "description": "Get the roles you bought in this server's store",
        "options": [
            {
                "type": STRING_OPTION,
                "name": "code",
                "description": "The claim code from your order confirmation (for orders without Discord)",
                "required": False,
                "max_length": 64,
            }
        ],
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
    },
    {
        "name": "check",
        "type": 1,
        "description": "See your pending and recent role deliveries",
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
    },
    {
        "name": "help",
        "type": 1,
        "description": "What these commands do, and what to do when a role does not arrive",
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
    },
    {
        "name": "link",
        "type": 1,
        "description": "Connect this server to a store with the code the store gave you",
        "options": [
            {
                "type": STRING_OPTION,
                "name": "code",
                "description": "The one-time code from the store's Discord settings",
                "required": True,
                "max_length": 64,
            }
        ],
        "default_member_permissions": str(MANAGE_GUILD),
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
    },
)


def command_definitions() -> list[dict[str, Any]]:
    """A fresh copy of :data:`COMMANDS`, ready to send."""
    return [dict(command) for command in COMMANDS]
