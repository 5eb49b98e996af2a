"""Discord's REST API with a user's OAuth2 access token (``Authorization: Bearer``): the calls an
application makes on a user's behalf, with the rate limits, retries and errors of the bot's client.

One client per access token: Discord keeps a user token's rate limits apart from the bot's. After a 401
(the token expired or the user took the authorisation back) it raises :class:`TokenDisabled` without
calling Discord; refresh the token and make a new client.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_discord_roles.discord.client import RestClient
from flask_discord_roles.discord.role_connections import (
    MetadataValue,
    RoleConnection,
    metadata_value,
)
from flask_discord_roles.discord.routes import Route

__all__ = ["DiscordUserClient"]

_ROLE_CONNECTION = "/users/@me/applications/{application_id}/role-connection"


class DiscordUserClient(RestClient):
    """Talks to Discord as the user who granted ``token`` (an OAuth2 access token) to an application.

    Takes the options of :class:`~flask_discord_roles.discord.client.RestClient`; the token never
    appears in a repr, an error or a log line.
    """

    auth_scheme = "Bearer"
    credential_name = "user's access token"
    after_401 = "refresh it, or ask the user to authorise the application again"

    def get_user_role_connection(self, application_id: str) -> RoleConnection:
        """What ``application_id`` keeps for this user for Linked Roles (all empty if nothing yet).

        The token must be the application's, granted with the ``role_connections.write`` scope: Discord
        answers 401 (:class:`Unauthorized`) without the scope.
        """
        route = Route("GET", _ROLE_CONNECTION, application_id=application_id)
        return RoleConnection.from_json(self.request(route) or {})

    def put_user_role_connection(
        self,
        application_id: str,
        *,
        platform_name: str | None = None,
        platform_username: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> RoleConnection:
        """Replace what ``application_id`` keeps for this user, and return it as Discord kept it.

        ``platform_name`` (at most 50 characters) and ``platform_username`` (at most 100) show on the
        user's profile; ``metadata`` holds a value for any of the application's declared keys (see
        :func:`~flask_discord_roles.discord.role_connections.metadata_value` for how numbers, booleans
        and dates are written). A key left out has no value any more. :class:`BadRequest` (50035, with
        ``errors`` per field) when Discord refuses the body; then nothing changed.
        """
        values = {key: metadata_value(value) for key, value in (metadata or {}).items()}
        body = {"platform_name": platform_name, "platform_username": platform_username, "metadata": values}
        route = Route("PUT", _ROLE_CONNECTION, application_id=application_id)
        return RoleConnection.from_json(self.request(route, json=body) or {})

    def delete_user_role_connection(self, application_id: str) -> None:
        """Remove what ``application_id`` keeps for this user; removing it twice is no error."""
        self.request(Route("DELETE", _ROLE_CONNECTION, application_id=application_id))
