"""The Linked Roles fields a store declares on its Discord application, and which application that is.

Discord keeps role connections per application: the user's token (granted to the application customers
link through, :func:`.oauth_apps.oauth_app_for`) writes them, and the same application's bot token
declares the fields. So a store's Linked Roles live on its own application when customers link through
it (its bot saved with the client secret), else on the platform's application when the platform's bot is
that application too. Registering is a full replace (``PUT``), so doing it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_discord_roles._core.bots import client_for, get_bot
from flask_discord_roles._core.oauth_apps import oauth_app_for
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.errors import PermanentDiscordError, TransientDiscordError, Unauthorized
from flask_discord_roles.discord.role_connections import (
    RoleConnectionMetadata,
    RoleConnectionMetadataType,
)
from flask_discord_roles.errors import DiscordRolesError

VERIFIED_BUYER = "verified_buyer"
ACTIVE_SUBSCRIPTION = "active_subscription"
TOTAL_ORDERS = "total_orders"
CUSTOMER_SINCE = "customer_since"

METADATA: tuple[RoleConnectionMetadata, ...] = (
    RoleConnectionMetadata(
        key=VERIFIED_BUYER,
        name="Verified buyer",
        description="Has bought from the store (an order that was not refunded)",
        type=RoleConnectionMetadataType.BOOLEAN_EQUAL,
    ),
    RoleConnectionMetadata(
        key=ACTIVE_SUBSCRIPTION,
        name="Active subscription",
        description="Holds a subscription or fixed-term purchase that has not ended",
        type=RoleConnectionMetadataType.BOOLEAN_EQUAL,
    ),
    RoleConnectionMetadata(
        key=TOTAL_ORDERS,
        name="Orders",
        description="Number of orders (and subscription renewals) at the store, refunds not counted",
        type=RoleConnectionMetadataType.INTEGER_GREATER_THAN_OR_EQUAL,
    ),
    RoleConnectionMetadata(
        key=CUSTOMER_SINCE,
        name="Customer for",
        description="Days since the first order at the store",
        type=RoleConnectionMetadataType.DATETIME_LESS_THAN_OR_EQUAL,
    ),
)
"""What every store declares: Discord allows 5 records; we know orders, not money, so no amount spent."""


class LinkedRolesUnavailable(DiscordRolesError):
    """The store's Linked Roles fields could not be registered with Discord; the message says why and
    what to do. Nothing was changed."""


@dataclass(frozen=True)
class LinkedRolesApp:
    """The application a store's role connections belong to, and a bot client of that application."""

    application_id: str
    bot_client: DiscordClient | None
    platform_name: str | None


def linked_roles_app(state: DiscordRolesState, store_id: str) -> LinkedRolesApp | None:
    """The application customers link through, with its bot's client when we hold that bot's token;
    None when the store has no application customers can link through."""
    app = oauth_app_for(state, store_id)
    if app is None:
        return None
    bot = get_bot(state, store_id)
    client: DiscordClient | None = None
    platform_name = None
    if bot is not None and not bot.uses_platform_bot and bot.application_id == app.client_id:
        try:
            client = client_for(state, bot)
        except DecryptionError:
            client = None
        platform_name = bot.bot_name
    elif app.client_id == state.settings.platform_application_id and state.platform_token:
        client = state.clients.for_token(state.platform_token)
    return LinkedRolesApp(app.client_id, client, platform_name)


def register_metadata(state: DiscordRolesState, store_id: str) -> list[RoleConnectionMetadata]:
    """Declare :data:`METADATA` on the store's application (Discord replaces what was there).

    Raises :class:`LinkedRolesUnavailable` with the fix when there is no application to declare them
    on, Discord refuses the bot token or the fields, or Discord is not answering.
    """
    app = linked_roles_app(state, store_id)
    if app is None:
        raise LinkedRolesUnavailable(
            "Linked Roles need account linking set up: save the store's bot with its OAuth2 client "
            "secret (or configure the platform's OAuth application), then turn Linked Roles on again."
        )
    if app.bot_client is None:
        raise LinkedRolesUnavailable(
            f"Customers link through application {app.application_id}, but this store's bot is another "
            "application (or its token cannot be read): Linked Roles are declared with the linking "
            "application's own bot. Save the bot together with its client secret, then try again."
        )
    try:
        return app.bot_client.put_role_connection_metadata(app.application_id, METADATA)
    except Unauthorized:
        raise LinkedRolesUnavailable(
            "Discord refused the bot token while registering the Linked Roles fields: save the bot "
            "token again, then turn Linked Roles on again."
        ) from None
    except PermanentDiscordError as error:
        raise LinkedRolesUnavailable(
            f"Discord refused the Linked Roles fields ({error.message}); nothing was changed."
        ) from None
    except TransientDiscordError:
        raise LinkedRolesUnavailable(
            "Discord is not answering right now, so the Linked Roles fields could not be registered. "
            "Try again in a minute."
        ) from None
