"""Purchase notifications: one message per completed order in the store's chosen channel.

Queued in the host's transaction like deliveries and sent by the same runners, never in the checkout
request. A notification failing never touches a delivery: they are separate rows with separate outcomes.
Mentions never ping: ``allowed_mentions`` is empty, whatever the package names contain.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from flask_discord_roles._core.bots import token_of
from flask_discord_roles._core.leasing import LeasedQueue
from flask_discord_roles._core.reconnect import survives_transient_db_errors
from flask_discord_roles._runtime.crypto import DecryptionError
from flask_discord_roles._runtime.models import PurchaseNotification, utcnow
from flask_discord_roles._runtime.state import DiscordRolesState
from flask_discord_roles.codes import ReasonCode, SendStatus
from flask_discord_roles.discord import errors as discord_errors
from flask_discord_roles.discord.errors import (
    PermanentDiscordError,
    RateLimited,
    TransientDiscordError,
    Unauthorized,
)

logger = logging.getLogger("flask_discord_roles.notifications")

EMBED_COLOUR = 0x57F287
_MAX_LISTED_PACKAGES = 20


def notification_message(notification: PurchaseNotification) -> dict[str, Any]:
    """The message: an embed naming the packages and the buyer, with every mention switched off."""
    names = notification.package_names or notification.package_ids
    listed = ", ".join(f"**{name}**" for name in names[:_MAX_LISTED_PACKAGES])
    if len(names) > _MAX_LISTED_PACKAGES:
        listed += f" and {len(names) - _MAX_LISTED_PACKAGES} more"
    buyer = f"<@{notification.discord_user_id}>" if notification.discord_user_id else "A customer"
    return {
        "embeds": [
            {
                "title": "New purchase",
                "description": f"{buyer} bought {listed or 'an order'}."[:4096],
                "color": EMBED_COLOUR,
                "fields": [{"name": "Order", "value": notification.order_id, "inline": True}],
                "timestamp": notification.created_at.isoformat(),
            }
        ],
        # Nothing in this message may ping anyone: not the buyer, not @everyone in a package name.
        "allowed_mentions": {"parse": []},
    }


class NotificationSender(LeasedQueue):
    """Claims due purchase notifications under a lease and posts them."""

    def __init__(
        self,
        state: DiscordRolesState,
        engine: sa.Engine,
        runner_id: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(state, engine, runner_id, clock=clock)
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False)
        self._rng = random.Random()

    @property
    def model(self) -> type[PurchaseNotification]:
        return self.state.models.PurchaseNotification

    def run(self, notification_id: int) -> str:
        """Post one claimed notification; returns ``sent``, ``retried``, ``failed`` or ``lost``."""
        loaded = self._load(notification_id)
        if loaded is None:
            return "lost"
        message, channel_id, attempts, token_ciphertext, uses_platform_bot = loaded
        if token_ciphertext is None:
            return self._finish(
                notification_id,
                SendStatus.FAILED,
                ReasonCode.NO_BOT,
                "The store's bot is missing or switched off.",
            )
        try:
            client = self.state.clients.for_token(token_of(self.state, token_ciphertext, uses_platform_bot))
            client.create_message(channel_id, message, max_wait=self.state.settings.rate_limit_wait)
        except DecryptionError:
            return self._finish(
                notification_id, SendStatus.FAILED, ReasonCode.TOKEN_UNREADABLE, "Save the bot token again."
            )
        except RateLimited as limited:
            code = ReasonCode.RATE_LIMITED if limited.from_discord else ReasonCode.PACED
            return self._finish(notification_id, SendStatus.PENDING, code, None, delay=limited.retry_after)
        except TransientDiscordError as error:
            if attempts >= self.state.settings.max_attempts:
                return self._finish(
                    notification_id, SendStatus.FAILED, ReasonCode.DISCORD_UNAVAILABLE, error.message
                )
            delay = min(self.state.settings.retry_cap, self.state.settings.retry_base * 2 ** (attempts - 1))
            return self._finish(
                notification_id,
                SendStatus.PENDING,
                ReasonCode.DISCORD_UNAVAILABLE,
                error.message,
                delay=delay * self._rng.uniform(0.5, 1),
            )
        except PermanentDiscordError as error:
            code, reason = _explain(error)
            return self._finish(notification_id, SendStatus.FAILED, code, reason)
        return self._finish(notification_id, SendStatus.SENT, None, None)

    @survives_transient_db_errors
    def _load(self, notification_id: int) -> tuple[dict[str, Any], str, int, str | None, bool] | None:
        """What posting needs: message, channel, attempts, the bot's token (None: no usable bot) and
        whether it is the shared bot; None when the notification is not ours any more."""
        models = self.state.models
        with self._sessions() as session:
            notification = session.get(models.PurchaseNotification, notification_id)
            if notification is None or notification.leased_by != self.runner_id:
                return None
            bot = session.scalar(
                sa.select(models.StoreBot).where(models.StoreBot.store_id == notification.store_id)
            )
            token_ciphertext = bot.token_ciphertext if bot is not None and bot.is_enabled else None
            return (
                notification_message(notification),
                notification.channel_id,
                notification.attempts,
                token_ciphertext,
                bot is not None and bot.uses_platform_bot,
            )

    @survives_transient_db_errors
    def _finish(
        self,
        notification_id: int,
        status: SendStatus,
        code: ReasonCode | None,
        reason: str | None,
        *,
        delay: float = 0.0,
    ) -> str:
        model = self.state.models.PurchaseNotification
        now = self._clock()
        values: dict[str, Any] = {
            "status": status,
            "reason_code": code,
            "reason": reason,
            "leased_by": None,
            "lease_expires_at": None,
        }
        if status == SendStatus.SENT:
            values["sent_at"] = now
        if status == SendStatus.PENDING:
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        with self._sessions.begin() as session:
            updated = session.execute(
                sa.update(model)
                .where(model.id == notification_id, model.leased_by == self.runner_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            return "lost"
        if status == SendStatus.FAILED:
            logger.warning("purchase notification %s failed: %s (%s)", notification_id, code, reason)
        return "retried" if status == SendStatus.PENDING else str(status)


def _explain(error: PermanentDiscordError) -> tuple[ReasonCode, str]:
    if isinstance(error, Unauthorized):
        return ReasonCode.TOKEN_REVOKED, "Discord refused the bot token; save a new one."
    if error.code in (discord_errors.MISSING_ACCESS, discord_errors.MISSING_PERMISSIONS):
        return (
            ReasonCode.MISSING_CHANNEL_PERMISSIONS,
            "Give the bot View Channel, Send Messages and Embed Links in the notification channel.",
        )
    if error.code == UNKNOWN_CHANNEL:
        return ReasonCode.CHANNEL_DELETED, "The notification channel no longer exists; choose another one."
    return ReasonCode.DISCORD_REJECTED, f"Discord refused the message: {error.message}"


UNKNOWN_CHANNEL = 10003
