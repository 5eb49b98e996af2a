"""The addresses we hand out (the interactions URL, the OAuth redirect URI), built from
``DISCORD_ROLES_PUBLIC_BASE_URL``, not from whatever ``Host`` header a request carries.

Outside ``TESTING`` and debug the setting is required (``init_app`` refuses to start without it). In
``TESTING`` or debug without it, the request's own address stands in, but only when its ``Host`` is a
plain ``host[:port]``: a hostile one (``a@evil``, ``evil/x``) is refused, never made into an address.
"""

from __future__ import annotations

import re

from flask import has_request_context, request
from werkzeug.exceptions import BadRequest

from flask_discord_roles._runtime.config import Settings
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles._web.guards import InputRefused
from flask_discord_roles.errors import ConfigurationError

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")


class UntrustedHost(InputRefused, BadRequest):
    description = "The Host header is not a host name, so no address of this site can be built from it."


def public_base_url(settings: Settings) -> str:
    """Where this app is reached from outside, without a trailing slash (see the module's docstring)."""
    if settings.public_base_url is not None:
        return settings.public_base_url
    if not has_request_context():
        raise ConfigurationError(
            "Set DISCORD_ROLES_PUBLIC_BASE_URL (or pass base_url): outside a request there is no "
            "address of this app to build on."
        )
    host = request.host
    if not _HOST.fullmatch(host):
        raise UntrustedHost()
    return f"{request.scheme}://{host}{request.script_root}"


def store_interactions_url(state: DiscordRolesState, store_id: str, *, base_url: str | None = None) -> str:
    """What the store owner pastes as the application's Interactions Endpoint URL.

    The base is ``base_url``, else ``DISCORD_ROLES_PUBLIC_BASE_URL``, else (``TESTING`` or debug) this
    request's own address when its ``Host`` is a plain host name.
    """
    base = base_url or public_base_url(state.settings)
    slug = state.loaders.slug_of_store(store_id)
    return f"{base.rstrip('/')}{state.settings.interactions_path}/{slug}"
