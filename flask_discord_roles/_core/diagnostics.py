"""Diagnostics: everything a store owner can get wrong, checked against Discord, each with the fix.

One call answers "why do my roles not arrive?": is there a bot, does Discord accept its token, are its
commands registered, do interactions reach us, is a server linked, is the bot in each linked server with
Manage Roles, can it give every mapped role, can it post in the notification channel. Each check says
``ok``, and when not, a reason code (the same codes deliveries fail with) and the fix in plain words.

Diagnostics never fail as a whole: a check Discord does not answer is reported as
``discord_unavailable``, and once Discord has failed to answer, the remaining checks that need it are
reported the same way without asking again (so a Discord outage costs one timeout, not one per check).
Checks that could only repeat an earlier failure (the roles of a server the bot is not in, say) are
left out rather than listed as failing for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from flask_discord_roles._core.bots import client_for, get_bot, invite_url
from flask_discord_roles._core.settings import check_notification_channel, linked_guild_ids, store_settings
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.models import StoreBot, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode
from flask_discord_roles.discord.client import DiscordClient
from flask_discord_roles.discord.commands import command_definitions
from flask_discord_roles.discord.errors import (
    Forbidden,
    NotFound,
    PermanentDiscordError,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord.permissions import (
    CREATE_INSTANT_INVITE,
    MANAGE_ROLES,
    base_permissions,
    can_assign,
    has_permission,
)

RECENT_INTERACTIONS = timedelta(days=7)
"""An interaction within this long counts as "Discord reaches our interactions endpoint"."""

DISCORD_UNAVAILABLE = "Discord did not answer this check in time. Run the diagnostics again in a minute."

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One thing that must be right; ``reason_code`` and ``fix`` say what is wrong when it is not."""

    check: str
    ok: bool
    reason_code: str | None = None
    fix: str | None = None
    guild_id: str | None = None
    role_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Diagnosis:
    """Every check, in the order a store owner should fix them."""

    checked_at: datetime
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class _DiscordDown(Exception):
    """Discord failed to answer earlier in this run: do not ask it again."""


class _Run:
    """One diagnostics run: the checks found so far, and whether Discord is still answering."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.discord_down = False

    def add(
        self,
        check: str,
        ok: bool = True,
        reason_code: str | None = None,
        fix: str | None = None,
        *,
        guild_id: str | None = None,
        role_id: str | None = None,
    ) -> None:
        # Every code is checked against the catalogue here, the one place a check is recorded.
        code = None if reason_code is None else ReasonCode(reason_code)
        self.checks.append(Check(check, ok, code, fix, guild_id, role_id))

    def ask(self, call: Callable[[], T]) -> T:
        """Call Discord, unless it already failed to answer; raises :class:`_DiscordDown` then."""
        if self.discord_down:
            raise _DiscordDown
        try:
            return call()
        except TransientDiscordError:
            self.discord_down = True
            raise _DiscordDown from None

    def unavailable(self, check: str, *, guild_id: str | None = None, role_id: str | None = None) -> None:
        self.add(check, False, "discord_unavailable", DISCORD_UNAVAILABLE, guild_id=guild_id, role_id=role_id)


def run_diagnostics(
    state: DiscordRolesState,
    store_id: str,
    *,
    interactions_url: str | None = None,
    now: datetime | None = None,
) -> Diagnosis:
    """Check everything the store's role deliveries depend on. Reads only; never raises for Discord.

    ``interactions_url`` is where Discord must send the store's own bot's interactions (the tenant API
    knows it); it goes into the fix when none arrive.
    """
    now = now or utcnow()
    run = _Run()
    bot = get_bot(state, store_id)
    guild_ids = linked_guild_ids(state, store_id)
    client = _bot_check(state, run, bot)
    # The bot's user id, once Discord has accepted its token: every later Discord check needs both.
    bot_user_id: str | None = None
    if bot is not None:
        if client is not None:
            bot_user_id = _identity_check(state, run, bot, client)
            if bot_user_id is not None:
                _commands_check(run, bot, client)
        _interactions_check(run, bot, interactions_url, now)
    _linked_check(run, guild_ids)
    if bot is not None and client is not None and bot_user_id is not None:
        for guild_id in guild_ids:
            _guild_checks(state, run, store_id, bot, client, bot_user_id, guild_id)
    _notification_check(state, run, store_id, ask_discord=bot_user_id is not None)
    return Diagnosis(now, run.checks)


def _bot_check(state: DiscordRolesState, run: _Run, bot: StoreBot | None) -> DiscordClient | None:
    """Is there a bot, switched on, whose token we can read? Its client when there is."""
    if bot is None:
        run.add(
            "bot_configured",
            False,
            "no_bot",
            "Save your bot's Application ID, Public Key and Token, then invite it to your server.",
        )
        return None
    if bot.uses_platform_bot and state.platform_token is None:
        run.add(
            "bot_configured",
            False,
            "platform_bot_unavailable",
            "This store uses the platform's shared bot, which is no longer configured here. Save a bot of "
            "your own, or ask the platform's support.",
        )
        return None
    try:
        client = client_for(state, bot)
    except DecryptionError:
        run.add(
            "bot_configured",
            False,
            "token_unreadable",
            "The saved bot token can no longer be decrypted: save the bot token again.",
        )
        return None
    if not bot.is_enabled:
        if bot.disabled_reason == "token_revoked":
            fix = (
                "The bot was switched off because Discord refused its token. Reset the token on the "
                "Developer Portal's Bot page and save it again."
            )
        else:
            fix = "The bot is switched off, so no roles are delivered: switch it on again."
        run.add("bot_configured", False, bot.disabled_reason or "bot_disabled", fix)
    else:
        run.add("bot_configured")
    return client


def _identity_check(state: DiscordRolesState, run: _Run, bot: StoreBot, client: DiscordClient) -> str | None:
    """Does Discord accept the bot's token? The bot's user id when it does.

    For the platform's shared bot the token is the platform's, not something the store can fix, so the
    check says so instead of asking the owner to reset a token they do not have.
    """
    name = "platform_bot_reachable" if bot.uses_platform_bot else "token_valid"
    try:
        # Asked even when the id is known (saved, or remembered for the shared bot): this is the check.
        user_id = str(run.ask(client.get_current_user)["id"])
    except _DiscordDown:
        run.unavailable(name)
        return None
    except Unauthorized:
        if bot.uses_platform_bot:
            fix = (
                "Discord refused the platform's shared bot. This is not something you can fix: ask the "
                "platform's support, or save a bot of your own."
            )
        else:
            fix = (
                "Discord refused the bot token (it was reset, or the bot deleted). Reset the token on the "
                "Developer Portal's Bot page and save it again."
            )
        run.add(name, False, "token_revoked", fix)
        return None
    except PermanentDiscordError as error:
        run.add(name, False, "discord_rejected", f"Discord would not say who the bot is ({error.message}).")
        return None
    if bot.uses_platform_bot:
        state.platform_user_id = user_id
    run.add(name)
    return user_id


def _commands_check(run: _Run, bot: StoreBot, client: DiscordClient) -> None:
    """Are /claim, /check, /help and /link registered with Discord, as we define them now?"""
    try:
        registered = run.ask(lambda: client.get_global_commands(bot.application_id))
    except _DiscordDown:
        run.unavailable("commands_registered")
        return
    except PermanentDiscordError as error:
        run.add(
            "commands_registered",
            False,
            "discord_rejected",
            f"Discord would not list the bot's commands ({error.message}).",
        )
        return
    wanted = {str(command["name"]) for command in command_definitions()}
    missing = sorted(wanted - {str(command.get("name")) for command in registered})
    if not missing:
        run.add("commands_registered")
        return
    listed = ", ".join(f"/{name}" for name in missing)
    if bot.uses_platform_bot:
        fix = (
            f"The platform's shared bot is missing {listed}. Ask the platform's support to run "
            "`flask discord-roles register-commands`."
        )
    else:
        fix = (
            f"Discord does not have {listed}. Register the commands again (POST "
            "/custom-bot/register-commands); they can take up to an hour to appear in servers."
        )
    run.add("commands_registered", False, "commands_missing", fix)


def _interactions_check(run: _Run, bot: StoreBot, url: str | None, now: datetime) -> None:
    """Has Discord sent the bot an interaction (a /claim, a /help) lately?"""
    last = bot.last_interaction_at
    if last is not None and now - last <= RECENT_INTERACTIONS:
        run.add("interactions_received")
        return
    if bot.uses_platform_bot:
        where = "Run /help in your server: if the bot does not answer, ask the platform's support."
    else:
        portal = (
            f"paste {url}" if url else "paste this store's interactions URL (shown with the bot's settings)"
        )
        where = (
            f"In the Discord Developer Portal, open your application's General Information page, {portal} "
            "into Interactions Endpoint URL and save; then run /help in your server."
        )
    if last is None:
        run.add(
            "interactions_received",
            False,
            "no_interactions",
            f"Discord has never sent this bot a command, so /claim cannot work yet. {where}",
        )
    else:
        run.add(
            "interactions_received",
            False,
            "no_recent_interactions",
            f"No command has reached the bot since {last:%Y-%m-%d}. If your customers use /claim, check "
            f"that Discord can still reach it. {where}",
        )


def _linked_check(run: _Run, guild_ids: list[str]) -> None:
    if guild_ids:
        run.add("guild_linked")
        return
    run.add(
        "guild_linked",
        False,
        "no_guild_linked",
        "No Discord server is linked to this store. Create a link code in the store's Discord settings "
        "and run /link code:<code> in your server, with the bot in it.",
    )


def _guild_checks(
    state: DiscordRolesState,
    run: _Run,
    store_id: str,
    bot: StoreBot,
    client: DiscordClient,
    bot_user_id: str,
    guild_id: str,
) -> None:
    """Is the bot in the server, with Manage Roles, able to give every role mapped there?"""
    try:
        roles = run.ask(lambda: client.get_guild_roles(guild_id))
        member = run.ask(lambda: client.get_member(guild_id, bot_user_id))
    except _DiscordDown:
        run.unavailable("bot_in_guild", guild_id=guild_id)
        return
    except (Forbidden, NotFound):
        # Discord answers Missing Access (or Unknown Guild/Member) for a server the bot was removed from.
        run.add(
            "bot_in_guild",
            False,
            "bot_not_in_guild",
            _invite_again_fix(state, store_id, bot, guild_id),
            guild_id=guild_id,
        )
        return
    except PermanentDiscordError as error:
        run.add(
            "bot_in_guild",
            False,
            "discord_rejected",
            f"Discord would not describe this server ({error.message}).",
            guild_id=guild_id,
        )
        return
    run.add("bot_in_guild", guild_id=guild_id)
    bot_roles = [str(role) for role in member.get("roles", [])]
    _guild_permission_checks(state, run, store_id, guild_id, bot_roles, roles)
    for role_id, role_name in _mapped_roles(state, store_id, guild_id):
        _role_check(run, guild_id, role_id, role_name, bot_roles, roles)


def _invite_again_fix(state: DiscordRolesState, store_id: str, bot: StoreBot, guild_id: str) -> str:
    """The fix for a linked server the bot is no longer in: its invite link, or unlinking the server."""
    adds_members = store_settings(state, store_id).join_guilds_on_link
    invite = invite_url(bot.application_id, guild_id, adds_members=adds_members)
    if bot.uses_platform_bot:
        invite_hint = f"Invite the shared bot again with {invite}"
    else:
        invite_hint = f"Invite it again with {invite}"
    return (
        f"The bot is not in this linked server any more. {invite_hint}, keeping Manage Roles; or unlink "
        "the server if you no longer use it."
    )


def _guild_permission_checks(
    state: DiscordRolesState,
    run: _Run,
    store_id: str,
    guild_id: str,
    bot_roles: list[str],
    roles: list[dict[str, Any]],
) -> None:
    """Does the bot have Manage Roles there, and Create Invite when customers are added as they link?"""
    permissions = base_permissions(guild_id, bot_roles, roles)
    _permission_check(
        run,
        "manage_roles",
        permissions,
        MANAGE_ROLES,
        "missing_manage_roles",
        "Give the bot's role the Manage Roles permission (Server Settings → Roles → the bot's role).",
        guild_id=guild_id,
    )
    if store_settings(state, store_id).join_guilds_on_link:
        # Adding a customer to the server as they link (guilds.join) needs the bot's Create Invite.
        _permission_check(
            run,
            "create_invite",
            permissions,
            CREATE_INSTANT_INVITE,
            "missing_create_invite",
            "Customers are added to this server when they link Discord, which needs the bot's role "
            "to have Create Invite (Server Settings → Roles → the bot's role); or switch "
            "join_guilds_on_link off.",
            guild_id=guild_id,
        )


def _permission_check(
    run: _Run, check: str, permissions: int, needed: int, reason_code: str, fix: str, *, guild_id: str
) -> None:
    """``check`` is ok when ``permissions`` include ``needed``; else it fails with the code and fix."""
    if has_permission(permissions, needed):
        run.add(check, guild_id=guild_id)
    else:
        run.add(check, False, reason_code, fix, guild_id=guild_id)


def _mapped_roles(state: DiscordRolesState, store_id: str, guild_id: str) -> list[tuple[str, str | None]]:
    """Each role mapped in the server once, however many packages give it."""
    model = state.models.RoleMapping
    rows = state.db.session.execute(
        sa.select(model.role_id, sa.func.max(model.role_name))
        .where(model.store_id == store_id, model.guild_id == guild_id)
        .group_by(model.role_id)
        .order_by(model.role_id)
    )
    return [(str(role_id), name) for role_id, name in rows]


def _role_check(
    run: _Run,
    guild_id: str,
    role_id: str,
    role_name: str | None,
    bot_roles: list[str],
    roles: list[dict[str, Any]],
) -> None:
    role: Mapping[str, Any] | None = next((r for r in roles if str(r["id"]) == role_id), None)
    if role is None:
        label = f"«{role_name}»" if role_name else f"role {role_id}"
        run.add(
            "role_assignable",
            False,
            "role_deleted",
            f"The mapped {label} no longer exists in the server. Map its packages to an existing role and "
            "delete this mapping.",
            guild_id=guild_id,
            role_id=role_id,
        )
        return
    verdict = can_assign(guild_id, bot_roles, role, roles)
    run.add(
        "role_assignable", verdict.ok, verdict.reason_code, verdict.fix, guild_id=guild_id, role_id=role_id
    )


def _notification_check(state: DiscordRolesState, run: _Run, store_id: str, *, ask_discord: bool) -> None:
    """When purchase notifications are on, can the bot post them in the chosen channel?

    Without a bot Discord accepts (``ask_discord`` false) the channel is not checked: the bot checks
    already say what to fix first.
    """
    settings = store_settings(state, store_id)
    if not settings.notifications_enabled:
        return
    channel_id = settings.notification_channel_id
    if channel_id is None:
        run.add(
            "notification_channel",
            False,
            "no_notification_channel",
            "Purchase notifications are on but no channel is chosen: choose the notification channel, "
            "or switch notifications off.",
        )
        return
    if not ask_discord:
        return
    try:
        verdict = run.ask(lambda: check_notification_channel(state, store_id, channel_id))
    except _DiscordDown:
        run.unavailable("notification_channel")
        return
    run.add("notification_channel", verdict.ok, verdict.reason_code, verdict.fix, guild_id=verdict.guild_id)
