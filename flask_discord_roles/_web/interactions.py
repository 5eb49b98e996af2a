"""Where Discord sends interactions: ``POST <DISCORD_ROLES_INTERACTIONS_PATH>/<store_slug>`` for a
store's own bot, and ``POST <DISCORD_ROLES_INTERACTIONS_PATH>`` for the platform's shared bot.

Thin on purpose: find the bot, check Discord's signature on the raw body before reading
anything else out of it, then hand the payload to :mod:`..services.interactions`. Every refusal is JSON:
401 for a signature (what Discord's own probe expects), 404 for a store we do not know (or a path with
control characters, refused by :mod:`.guards` before any query), 413 for a body too large to be an
interaction, 400 for a signed body that is not an interaction (not JSON, nested too deep, no ``id``).
Anything unexpected is logged once and answered with a JSON 500, never the host's HTML error page.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from flask_discord_roles._core.interactions import answer_interaction, find_bot
from flask_discord_roles._core.platform_bot import answer_platform_interaction
from flask_discord_roles._runtime.state import DiscordRolesState, get_state
from flask_discord_roles._web.error_body import error_body
from flask_discord_roles._web.guards import InputRefused, guard, parse_json, read_body
from flask_discord_roles.discord import interactions as discord
from flask_discord_roles.discord.commands import COMMANDS
from flask_discord_roles.discord.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_is_valid,
    timestamp_is_fresh,
)
from flask_discord_roles.discord.snowflake import is_snowflake

interactions = Blueprint("discord_roles_interactions", __name__)
guard(interactions)
logger = logging.getLogger("flask_discord_roles.interactions")

RECHECK_SECONDS = 1.0
"""How often per store a request that does not match the remembered bot may make us read it again."""


@interactions.post("/<store_slug>")
def store_bot(store_slug: str) -> tuple[Response, int]:
    started = time.perf_counter()
    state = get_state()
    store_id = state.loaders.store_for_slug(store_slug)
    if store_id is None:
        return _refusal(404, "Not Found", "No store's bot answers at this address.")
    # The bot is remembered for a few seconds; when it seems wrong (none, or a key that does not
    # verify) it is read again, since it may have been saved a moment ago in another process.
    bot = find_bot(state, store_id) or find_bot(state, store_id, max_age=RECHECK_SECONDS)
    if bot is None:
        return _refusal(404, "Not Found", "No store's bot answers at this address.")
    body = read_body(state.settings.interaction_max_bytes)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature_is_valid(bot.public_key, signature, timestamp, body):
        fresh = find_bot(state, store_id, max_age=RECHECK_SECONDS)
        if (
            fresh is None
            or fresh == bot
            or not signature_is_valid(fresh.public_key, signature, timestamp, body)
        ):
            return _refusal(401, "Unauthorized", "Invalid request signature.")
        bot = fresh
    answer = _answer(state, timestamp, body, lambda payload: answer_interaction(state, bot, payload))
    return _timed(state, started, answer)


@interactions.post("")
def platform_bot() -> tuple[Response, int]:
    """The platform's shared bot, when ``DISCORD_ROLES_APPLICATION_ID`` and friends are set."""
    started = time.perf_counter()
    state = get_state()
    public_key = state.settings.platform_public_key
    if public_key is None:
        return _refusal(404, "Not Found", "This app has no shared bot; a store's bot has its own address.")
    body = read_body(state.settings.interaction_max_bytes)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature_is_valid(public_key, request.headers.get(SIGNATURE_HEADER), timestamp, body):
        return _refusal(401, "Unauthorized", "Invalid request signature.")
    answer = _answer(state, timestamp, body, lambda payload: answer_platform_interaction(state, payload))
    return _timed(state, started, answer)


def _answer(
    state: DiscordRolesState,
    timestamp: str | None,
    body: bytes,
    answer: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[Response, int, str]:
    """A signed body's answer: refused if stale or not an interaction, PONG for PING, else ``answer``;
    with the kind of interaction it was, for the metrics."""
    assert timestamp is not None  # a valid signature has one
    if not timestamp_is_fresh(timestamp, time.time(), state.settings.interaction_max_age):
        return (
            *_refusal(401, "Unauthorized", "The request's signature timestamp is too old or too new."),
            "refused",
        )
    payload = _interaction(body)
    if payload is None:
        return (*_refusal(400, "Bad Request", "The body is not a Discord interaction."), "refused")
    if payload["type"] == discord.PING:
        # Even for a switched-off bot: Discord removes an endpoint URL that stops answering PING.
        return _answer_response(_PONG), 200, "ping"
    reply = answer(payload)
    if state.db.session.registry.has():  # queries (/check, /help) never open the request's session
        state.db.session.commit()
    return _answer_response(_encode(reply)), 200, _kind(payload)


# Discord reads any JSON: answers are encoded compactly, as UTF-8, without the app's JSON provider (which
# sorts keys and escapes every emoji of /check's lines), and PONG once.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_PONG = _encode(discord.pong())


def _answer_response(body: str) -> Response:
    return Response(body, mimetype="application/json")


def _timed(
    state: DiscordRolesState, started: float, answer: tuple[Response, int, str]
) -> tuple[Response, int]:
    """Report how long a signed request took to answer, by the kind of interaction it was."""
    response, status, kind = answer
    state.telemetry.interaction_answered(kind, time.perf_counter() - started)
    return response, status


def _kind(payload: dict[str, Any]) -> str:
    """What a metric calls an interaction: our command's name, or its type; never free text."""
    kind = payload["type"]
    if kind == discord.APPLICATION_COMMAND:
        name = discord.command_name(payload)
        return name if name is not None and name in COMMAND_NAMES else "unknown_command"
    return _KINDS.get(kind, "other")


COMMAND_NAMES = frozenset(command["name"] for command in COMMANDS)
_KINDS = {
    discord.PING: "ping",
    discord.MESSAGE_COMPONENT: "component",
    discord.AUTOCOMPLETE: "autocomplete",
    discord.MODAL_SUBMIT: "modal",
}


def _interaction(body: bytes) -> dict[str, Any] | None:
    """The interaction in a signed ``body``, or None when it is not one (nesting too deep raises)."""
    try:
        payload = parse_json(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), int):
        return None
    # Every interaction has an id, PING included: it is what a redelivery is recognised by.
    interaction_id = payload.get("id")
    if not isinstance(interaction_id, str) or not is_snowflake(interaction_id):
        return None
    return payload


@interactions.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 400
    message = error.description if isinstance(error, InputRefused) else None
    return _refusal(status, error.name, message or "This address only accepts Discord's interactions.")


@interactions.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[Response, int]:
    # Logged here, once, with the traceback; Discord (or whoever sent it) gets JSON and no details.
    logger.exception("interactions webhook: unexpected %s", type(error).__name__)
    return jsonify(error_body(500, detail="Something went wrong on our side.")), 500


def _refusal(status: int, error: str, message: str) -> tuple[Response, int]:
    current_app.logger.debug("interaction refused: %s %s", status, message)
    return jsonify({"success": False, "error": error, "message": message}), status
