"""A Discord route: method, path template and parameters, and the key its rate limit is kept under."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["MAJOR_PARAMETERS", "Route"]

# Discord keeps a separate bucket per value of these ("major parameters").
MAJOR_PARAMETERS = ("guild_id", "channel_id", "webhook_id", "interaction_token")


class Route:
    """``Route("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", guild_id=…, …)``."""

    __slots__ = ("major", "method", "params", "template")

    def __init__(self, method: str, template: str, **params: str | int) -> None:
        self.method = method.upper()
        self.template = template
        self.params: Mapping[str, str] = {name: str(value) for name, value in params.items()}
        self.major: tuple[str, ...] = tuple(
            self.params[name] for name in MAJOR_PARAMETERS if name in self.params
        )

    @property
    def url_path(self) -> str:
        """The path with each parameter URL-quoted (ids are digits; tokens may not be)."""
        return self.template.format(**{k: quote(v, safe="") for k, v in self.params.items()})

    @property
    def key(self) -> str:
        """Method and template, e.g. ``PUT /guilds/{guild_id}/…``: what Discord maps to a bucket hash.

        Safe to log: it holds no ids and no tokens.
        """
        return f"{self.method} {self.template}"

    @property
    def bucket_key(self) -> tuple[str, tuple[str, ...]]:
        """Where this request's rate limit is kept until Discord names the bucket: route and majors."""
        return (self.key, self.major)

    @property
    def is_webhook(self) -> bool:
        """Interaction webhooks need no Authorization and are exempt from the global limit."""
        return self.template.startswith(("/webhooks/", "/interactions/"))

    def __repr__(self) -> str:
        # The template only: parameters may include an interaction token.
        return f"<Route {self.key}>"
