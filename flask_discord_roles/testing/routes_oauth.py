"""OAuth2 routes: the authorize page, the token endpoint (form only) and revocation.

The authorize page consents by itself (``consent`` allow/deny) unless ``interactive`` is set: then it
shows a consent page whose Authorize / Cancel buttons POST back here.

Authorize errors that cannot be trusted to the redirect (unknown client, bad redirect_uri) get a 400
page, as Discord shows one; the rest redirect back with ``error=...`` per RFC 6749.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from werkzeug.datastructures import MultiDict

import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.oauth import ACCESS_TTL, KNOWN_SCOPES, Grant, s256
from flask_discord_roles.testing.sandbox_pages import consent_page
from flask_discord_roles.testing.state import FakeBot

__all__ = ["DENIED", "authorize", "current_authorization", "decide", "revoke", "token"]

DENIED = "The resource owner or authorization server denied the request"


def _page(status: int, text: str) -> p.Reply:
    html = f"<!doctype html><title>Discord</title><p>{text}</p>"
    return p.Reply(status, html.encode(), "text/html; charset=utf-8")


def _redirect(uri: str, params: dict[str, str]) -> p.Reply:
    separator = "&" if "?" in uri else "?"
    return p.Reply(302, b"", None, {"Location": uri + separator + urlencode(params)})


def _oauth_error(status: int, error: str, description: str) -> p.ApiError:
    return p.ApiError(p.json_reply({"error": error, "error_description": description}, status))


def _login_user_id(ctx: p.Context) -> str:
    if ctx.oauth.login_user_id is None or ctx.oauth.login_user_id not in ctx.world.users:
        ctx.oauth.login_user_id = ctx.world.create_user("discord_user").id
    return ctx.oauth.login_user_id


def _invite_bot(ctx: p.Context, bot: FakeBot, args: MultiDict[str, str]) -> p.Reply:
    guild = ctx.world.guilds.get(args.get("guild_id", ""))
    if guild is None:
        return _page(400, "The fake needs guild_id: it has no server picker.")
    if bot.user_id not in guild.members:
        permissions = int(args.get("permissions", "0") or "0")
        ctx.world.add_bot_to_guild(bot, guild.id, permissions=permissions, role_position=None)
    redirect_uri = args.get("redirect_uri")
    if redirect_uri and ctx.oauth.redirect_allowed(redirect_uri):
        params = {"guild_id": guild.id, "permissions": args.get("permissions", "0")}
        if args.get("state"):
            params["state"] = args["state"]
        return _redirect(redirect_uri, params)
    return _page(200, "Authorized.")


@dataclass(frozen=True)
class _AuthRequest:
    """An authorize request that passed every check but the user's decision."""

    bot: FakeBot
    redirect_uri: str
    scopes: tuple[str, ...]
    state: dict[str, str]
    challenge: str | None
    method: str | None


def _validate(ctx: p.Context, args: MultiDict[str, str]) -> _AuthRequest | p.Reply:
    bot = ctx.world.bots.get(args.get("client_id", ""))
    if bot is None:
        return _page(400, "Unknown application: invalid client_id.")
    scopes = tuple(args.get("scope", "").split())
    if "bot" in scopes:
        return _invite_bot(ctx, bot, args)
    redirect_uri = args.get("redirect_uri")
    if not redirect_uri or not ctx.oauth.redirect_allowed(redirect_uri):
        return _page(400, "Invalid OAuth2 redirect_uri.")
    state = {"state": args["state"]} if "state" in args else {}
    challenge = args.get("code_challenge")
    method = args.get("code_challenge_method")
    error: tuple[str, str] | None = None
    if args.get("response_type") != "code":
        error = ("unsupported_response_type", "The response type is not supported.")
    elif not scopes or not set(scopes) <= KNOWN_SCOPES:
        error = ("invalid_scope", "The requested scope is invalid, unknown, or malformed.")
    elif challenge is not None and method != "S256":
        error = ("invalid_request", "code_challenge_method must be S256.")
    if error is not None:
        return _redirect(redirect_uri, {"error": error[0], "error_description": error[1], **state})
    return _AuthRequest(bot, redirect_uri, scopes, state, challenge, method)


def _deny(checked: _AuthRequest) -> p.Reply:
    error = {"error": "access_denied", "error_description": DENIED}
    return _redirect(checked.redirect_uri, {**error, **checked.state})


def _grant(ctx: p.Context, checked: _AuthRequest, user_id: str) -> p.Reply:
    pkce = (checked.challenge, checked.method)
    code = ctx.oauth.issue_code(checked.bot.client_id, user_id, checked.redirect_uri, checked.scopes, *pkce)
    return _redirect(checked.redirect_uri, {"code": code, **checked.state})


@p.route("GET", "/oauth2/authorize", family="", auth="none", global_limited=False, site=True)
@p.route("GET", "/oauth2/authorize", family="", auth="none", global_limited=False)
def authorize(ctx: p.Context) -> p.Reply:
    checked = _validate(ctx, ctx.request.args)
    if isinstance(checked, p.Reply):
        return checked
    if ctx.oauth.interactive:
        query = ctx.request.query_string.decode("latin-1")
        body = consent_page(ctx.world, checked.bot.name, checked.scopes, query, ctx.oauth.login_user_id)
        return p.Reply(200, body, "text/html; charset=utf-8")
    if ctx.oauth.consent != "allow":
        return _deny(checked)
    return _grant(ctx, checked, _login_user_id(ctx))


@p.route("POST", "/oauth2/authorize", family="", auth="none", global_limited=False, site=True)
def decide(ctx: p.Context) -> p.Reply:
    """The consent page's buttons: the request is checked again, as a form can be replayed."""
    form = ctx.request.form
    checked = _validate(ctx, MultiDict(parse_qsl(form.get("query", ""), keep_blank_values=True)))
    if isinstance(checked, p.Reply):
        return checked
    if form.get("decision") != "authorize":
        return _deny(checked)
    chosen = ctx.world.users.get(form.get("user_id", ""))
    if chosen is not None and not chosen.bot:
        ctx.oauth.login_user_id = chosen.id  # whoever signed in on the page is now the sandbox's user
    return _grant(ctx, checked, _login_user_id(ctx))


def _client(ctx: p.Context, form: MultiDict[str, str]) -> FakeBot:
    auth = ctx.request.authorization
    if auth is not None and auth.type == "basic":
        client_id, secret = auth.username or "", auth.password or ""
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    bot = ctx.world.bots.get(client_id)
    if bot is None or bot.client_secret != secret:
        raise _oauth_error(401, "invalid_client", "Invalid client")
    return bot


def _form(ctx: p.Context) -> MultiDict[str, str]:
    # Discord reads the token endpoint as a form only; a JSON body looks like no fields at all.
    if ctx.request.mimetype != "application/x-www-form-urlencoded":
        return MultiDict()
    return ctx.request.form


def _token_body(grant: Grant) -> dict[str, Any]:
    return {
        "access_token": grant.access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL,
        "refresh_token": grant.refresh_token,
        "scope": " ".join(grant.scopes),
    }


def _exchange_code(ctx: p.Context, bot: FakeBot, form: MultiDict[str, str]) -> Grant:
    with ctx.oauth.lock:
        record = ctx.oauth.codes.get(form.get("code", ""))
        if (
            record is None
            or record.used
            or record.client_id != bot.client_id
            or time.monotonic() > record.expires_at
        ):
            raise _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
        if record.redirect_uri is not None and form.get("redirect_uri") != record.redirect_uri:
            raise _oauth_error(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
        if record.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not 43 <= len(verifier) <= 128 or s256(verifier) != record.code_challenge:
                raise _oauth_error(400, "invalid_grant", 'Invalid "code_verifier" in request.')
        record.used = True
        return ctx.oauth.issue_grant(bot.client_id, record.user_id, record.scopes)


def _refresh(ctx: p.Context, bot: FakeBot, form: MultiDict[str, str]) -> Grant:
    with ctx.oauth.lock:
        old = ctx.oauth.by_refresh.get(form.get("refresh_token", ""))
        if old is None or old.client_id != bot.client_id:
            raise _oauth_error(400, "invalid_grant", 'Invalid "refresh_token" in request.')
        ctx.oauth.revoke(old)
        return ctx.oauth.issue_grant(bot.client_id, old.user_id, old.scopes)


@p.route("POST", "/oauth2/token", family="oauth_token", auth="none", global_limited=False)
def token(ctx: p.Context) -> p.Reply:
    form = _form(ctx)
    grant_type = form.get("grant_type")
    if grant_type not in ("authorization_code", "refresh_token"):
        raise _oauth_error(400, "unsupported_grant_type", f"Grant type {grant_type} is not supported")
    bot = _client(ctx, form)
    exchange = _exchange_code if grant_type == "authorization_code" else _refresh
    return p.json_reply(_token_body(exchange(ctx, bot, form)))


@p.route("POST", "/oauth2/token/revoke", family="oauth_token", auth="none", global_limited=False)
def revoke(ctx: p.Context) -> p.Reply:
    form = _form(ctx)
    bot = _client(ctx, form)
    value = form.get("token", "")
    with ctx.oauth.lock:
        grant = ctx.oauth.by_access.get(value) or ctx.oauth.by_refresh.get(value)
        if grant is not None and grant.client_id == bot.client_id:
            ctx.oauth.revoke(grant)
    return p.json_reply({})


@p.route("GET", "/oauth2/@me", family="users_me", auth="bearer", global_limited=False)
def current_authorization(ctx: p.Context) -> p.Reply:
    grant = ctx.grant
    if grant is None:
        raise p.unauthorized()
    bot = ctx.world.bots[grant.client_id]
    remaining = max(grant.expires_at - time.monotonic(), 0.0)
    body: dict[str, Any] = {
        "application": bot.application_json(),
        "scopes": list(grant.scopes),
        "expires": (datetime.now(UTC) + timedelta(seconds=remaining)).isoformat(),
    }
    if "identify" in grant.scopes:
        body["user"] = ctx.world.users[grant.user_id].to_json()
    return p.json_reply(body)
