"""Customers link their Discord account: ``GET <prefix>/link?next=…``, ``GET <prefix>/callback``,
``POST <prefix>/unlink``; ``GET <prefix>/linked-roles`` is the same start for Discord's Linked Roles
Verification URL.

The authorization-code flow with PKCE (S256). What the callback must check is kept in the customer's
session (``state``, the PKCE verifier, the store, the customer, where to go next): a callback whose
``state`` is not the one this browser was given, or that comes back a second time, or too late, is
refused without touching the pending attempt or anything else. ``next`` is only ever a path on this site.

Every outcome is a small page (``discord_roles/message.html``, which a host may override with its own
template of that name) or, for a client that asks for JSON, ``{"ok", "code", "message"[, …]}``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from flask_discord_roles._core.linking import AccountTaken, LinkOutcome, link_account, unlink_account
from flask_discord_roles._core.oauth_apps import OAuthApp, oauth_app_for
from flask_discord_roles._core.settings import store_settings
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles._web.guards import guard
from flask_discord_roles._web.urls import public_base_url
from flask_discord_roles.discord.errors import TransientDiscordError
from flask_discord_roles.discord.oauth import (
    GUILDS_JOIN,
    IDENTIFY,
    ROLE_CONNECTIONS_WRITE,
    InvalidClient,
    InvalidGrant,
    OAuthError,
    authorize_url,
    new_pkce,
)

linking = Blueprint("discord_roles_linking", __name__, template_folder="../templates")
guard(linking)
logger = logging.getLogger("flask_discord_roles.linking")

PENDING_KEY = "_discord_roles_link"
CSRF_KEY = "_discord_roles_csrf"
CSRF_FIELD = "discord_roles_csrf"
ATTEMPT_SECONDS = 600
"""How long a started link may take: Discord's authorization codes live ten minutes too."""


class Refusal(Exception):
    """An outcome that is not a success: a status, a machine-readable code and the words to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@linking.errorhandler(Refusal)
def _refused(refusal: Refusal) -> tuple[Response | str, int]:
    # Where the customer was going: the attempt's own ``next`` once it is known, else the request's.
    next_path = g.get("discord_roles_next") or _safe_next(request.args.get("next"))
    return _answer(refusal.status, refusal.code, refusal.message, next_path=next_path)


@linking.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[Response | str, int]:
    status = error.code or 400
    code = (error.name or "error").lower().replace(" ", "_")
    return _answer(status, code, error.description or error.name, next_path=_safe_next(None))


@linking.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[Response | str, int]:
    # Logged here, once, with the traceback; the customer sees the usual page (or JSON), no details.
    logger.exception("account linking: unexpected %s", type(error).__name__)
    return _answer(
        500, "server_error", "Something went wrong on our side. Try again in a minute.", next_path="/"
    )


@linking.get("/link")
def start() -> Any:
    return _start(verifying=False)


@linking.get("/linked-roles")
def verify_linked_roles() -> Any:
    """The Linked Roles Verification URL (Developer Portal → General Information): Discord sends a
    member here from a server's Linked Roles menu; linking with the ``role_connections.write`` scope
    is what writes their connection."""
    return _start(verifying=True)


def _start(*, verifying: bool) -> Any:
    state = get_state()
    if not current_app.secret_key:
        logger.error("account linking keeps its state in the session: set the app's SECRET_KEY")
        raise Refusal(503, "linking_not_configured", "Linking Discord is not set up on this site yet.")
    store_id, customer_id = _store_and_customer(state)
    app = oauth_app_for(state, store_id)
    if app is None:
        logger.warning(
            "store %s: account linking needs DISCORD_ROLES_OAUTH_CLIENT_SECRET or the store bot's "
            "client secret",
            store_id,
        )
        raise Refusal(503, "linking_not_configured", "Linking Discord is not set up for this store yet.")
    scopes = [IDENTIFY]
    settings = store_settings(state, store_id)
    if settings.join_guilds_on_link:
        scopes.append(GUILDS_JOIN)
    if settings.linked_roles_enabled:
        scopes.append(ROLE_CONNECTIONS_WRITE)
    elif verifying:
        raise Refusal(403, "linked_roles_disabled", "This store does not offer Discord Linked Roles.")
    pkce = new_pkce()
    attempt = secrets.token_urlsafe(24)
    redirect_uri = _callback_url(state)
    session[PENDING_KEY] = {
        "state": attempt,
        "verifier": pkce.verifier,
        "store_id": store_id,
        "customer_id": customer_id,
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "next": _safe_next(request.args.get("next")),
        "started": time.time(),
    }
    return redirect(
        authorize_url(
            state.settings.oauth_authorize_url,
            client_id=app.client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=attempt,
            code_challenge=pkce.challenge,
        )
    )


@linking.get("/callback")
def callback() -> Any:
    state = get_state()
    pending = _this_browsers_attempt()
    next_path = g.discord_roles_next = str(pending["next"])
    if time.time() - float(pending["started"]) > ATTEMPT_SECONDS:
        raise Refusal(400, "expired", "That took too long. Start linking Discord again.")
    if request.args.get("error"):
        raise Refusal(400, "denied", "Discord was not linked: the authorisation was cancelled on Discord.")
    store_id, customer_id = _store_and_customer(state)
    if (store_id, customer_id) != (pending["store_id"], pending["customer_id"]):
        raise Refusal(400, "invalid_state", "You signed in as someone else meanwhile. Start again.")
    app = oauth_app_for(state, store_id)
    if app is None or app.client_id != pending["client_id"]:
        raise Refusal(400, "invalid_state", "The store's Discord settings changed. Start again.")
    outcome = _link_with_code(state, app, pending, store_id, customer_id)
    return _linked(state, store_id, outcome, next_path=next_path)


def _this_browsers_attempt() -> dict[str, Any]:
    """The pending attempt whose ``state`` Discord sent back, taken out of the session (used once)."""
    pending = session.get(PENDING_KEY)
    given = request.args.get("state", "")
    if (
        not isinstance(pending, dict)
        or not given
        or not hmac.compare_digest(given, str(pending.get("state")))
    ):
        # Not this browser's attempt (forged, replayed, or from another session): leave its own alone.
        raise Refusal(
            400,
            "invalid_state",
            "This Discord link is not valid any more: it was already used, or started in another browser. "
            "Start again from your account page.",
        )
    session.pop(PENDING_KEY, None)
    return pending


def _link_with_code(
    state: DiscordRolesState, app: OAuthApp, pending: dict[str, Any], store_id: str, customer_id: str
) -> LinkOutcome:
    """Trade Discord's code for tokens, link the account they belong to, and commit; a
    :class:`Refusal` for each way that can fail (rolled back where anything was written)."""
    try:
        with app.client(state) as oauth:
            tokens = oauth.exchange_code(
                request.args.get("code", ""),
                redirect_uri=str(pending["redirect_uri"]),
                code_verifier=str(pending["verifier"]),
            )
            user = oauth.current_user(tokens.access_token)
        outcome = link_account(state, store_id, customer_id, user=user, tokens=tokens)
        state.db.session.commit()
    except InvalidGrant:
        raise Refusal(400, "invalid_grant", "Discord did not accept this link. Start again.") from None
    except InvalidClient:
        logger.error("store %s: Discord refused the OAuth client id or secret", store_id)
        raise Refusal(503, "linking_not_configured", "Linking Discord is not set up correctly.") from None
    except (TransientDiscordError, OAuthError):
        state.db.session.rollback()
        raise Refusal(
            503, "discord_unavailable", "Discord is not answering right now. Try again in a minute."
        ) from None
    except AccountTaken as taken:
        state.db.session.rollback()
        raise Refusal(409, "account_taken", str(taken)) from None
    except IntegrityError:
        # Another link of the same Discord account (or of this customer) was committed meanwhile.
        state.db.session.rollback()
        raise Refusal(
            409,
            "account_taken",
            "That Discord account was linked elsewhere in this store at the same moment. Start again.",
        ) from None
    return outcome


def _linked(
    state: DiscordRolesState, store_id: str, outcome: LinkOutcome, *, next_path: str
) -> tuple[Response | str, int]:
    """The success page (or JSON): the store's welcome message, the account, the servers joined."""
    account = outcome.account
    welcome = store_settings(state, store_id).welcome_message
    name = account.global_name or account.username or "your Discord account"
    message = welcome or f"Your Discord account {name} is linked."
    extra = {
        "discord_user": {
            "id": account.discord_user_id,
            "username": account.username,
            "global_name": account.global_name,
            "avatar_url": account.avatar_url,
        },
        "joined_guild_ids": outcome.joined_guild_ids,
        "problems": outcome.join_problems,
    }
    return _answer(200, "linked", message, next_path=next_path, extra=extra, notes=outcome.join_problems)


@linking.post("/unlink")
def unlink() -> Any:
    state = get_state()
    next_path = g.discord_roles_next = _safe_next(request.form.get("next") or request.args.get("next"))
    expected = session.get(CSRF_KEY)
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-Discord-Roles-CSRF") or ""
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(sent, expected):
        raise Refusal(400, "invalid_csrf", "This form has expired. Reload the page and try again.")
    store_id, customer_id = _store_and_customer(state, require_enabled=False)
    removed = unlink_account(state, store_id, customer_id)
    state.db.session.commit()
    if removed is None:
        return _answer(200, "not_linked", "No Discord account was linked.", next_path=next_path)
    return _answer(
        200,
        "unlinked",
        "Your Discord account is unlinked. Roles you already have in Discord stay until the store "
        "removes them.",
        next_path=next_path,
    )


def csrf_token() -> str:
    """The token the unlink form carries (one per session)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = session[CSRF_KEY] = secrets.token_urlsafe(24)
    return token


def _store_and_customer(state: DiscordRolesState, *, require_enabled: bool = True) -> tuple[str, str]:
    store_id = state.loaders.store_id(state.settings.default_store_id)
    if store_id is None:
        raise Refusal(
            404, "no_store", "There is no store here to link Discord with."
        )  # the host set neither a current_store_loader nor DISCORD_ROLES_STORE_ID
    if require_enabled and not store_settings(state, store_id).linking_enabled:
        raise Refusal(403, "linking_disabled", "This store does not link Discord accounts.")
    customer_id = state.loaders.customer_id()
    if customer_id is None:
        raise Refusal(
            401,
            "sign_in_required",
            "Sign in to link your Discord account. Bought as a guest? Run /claim in the store's Discord "
            "server with the code from your receipt.",
        )
    return store_id, customer_id


def _callback_url(state: DiscordRolesState) -> str:
    return f"{public_base_url(state.settings)}{state.settings.oauth_prefix}/callback"


def _safe_next(raw: str | None) -> str:
    """``raw`` when it is a path on this site; ``/`` otherwise (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")) or "\\" in raw:
        return "/"
    if any(ord(character) < 32 or ord(character) == 127 for character in raw):
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return "/"
    return raw


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.is_json


def _answer(
    status: int,
    code: str,
    message: str,
    *,
    next_path: str,
    extra: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> tuple[Response | str, int]:
    if _wants_json():
        return jsonify(
            {"ok": status < 400, "code": code, "message": message, "next": next_path, **(extra or {})}
        ), status
    page = render_template(
        "discord_roles/message.html",
        ok=status < 400,
        code=code,
        message=message,
        notes=notes or [],
        next_path=next_path,
    )
    return page, status
