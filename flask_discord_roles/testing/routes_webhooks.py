"""Interaction webhooks and callbacks: how an app answers after the first 3 seconds.

These routes take no Authorization and sit outside the global limit. Every call is recorded in
``FakeDiscord.interaction_responses`` under the interaction token, with ``acknowledged_before`` telling
whether the initial response had already reached the fake.

An interaction's webhook exists only once Discord has the app's initial response (the answer to its
POST, or a callback): before that, Discord answers an edit, a follow-up or a delete of it with
``404 {"code": 10015, "message": "Unknown Webhook"}`` (JSON error code 10015 in discord-api-docs'
"Opcodes and Status Codes"; discord.js refuses ``editReply``/``followUp``/``deleteReply`` on an
unacknowledged interaction for that reason, discordjs/discord.js#10587). The fake does the same, so a
test of an app that edits too early fails as production would.
"""

from __future__ import annotations

import time
from typing import Any

import flask_discord_roles.testing.protocol as p
from flask_discord_roles.testing.routes_channels import build_message, echoed, public_message
from flask_discord_roles.testing.state import InteractionRecord
from flask_discord_roles.testing.validation import validate_message

__all__ = [
    "CALLBACK",
    "CALLBACK_TYPES",
    "FOLLOWUPS",
    "MESSAGE",
    "ORIGINAL",
    "callback",
    "create_followup",
    "delete_original",
    "edit_followup",
    "edit_original",
    "get_original",
    "unknown_webhook",
]

CALLBACK_TYPES = frozenset({1, 4, 5, 6, 7, 8, 9})


def unknown_webhook() -> p.ApiError:
    return p.discord_error(404, 10015, "Unknown Webhook")


def _interaction(ctx: p.Context, kind: str | None = None) -> InteractionRecord:
    """The interaction whose webhook this is; refused as Discord does when it has no answer to it yet.

    ``kind`` names a call that changes something: refused, it is still recorded (``status`` 404), so
    tests see what the app tried and when.
    """
    record = ctx.world.interactions.get(ctx.params["token"])
    if record is None or record.application_id != ctx.params["application_id"]:
        raise unknown_webhook()
    if not _answered(ctx, record):
        if kind is not None:
            _record(ctx, record, kind, _body_or_none(ctx), status=404)
        raise unknown_webhook()
    if time.monotonic() - record.age_origin > ctx.world.interaction_ttl:
        raise p.discord_error(401, 50027, "Invalid Webhook Token")
    return record


def _body_or_none(ctx: p.Context) -> Any:
    try:
        return ctx.json_body()
    except p.ApiError:
        return None


def _answered(ctx: p.Context, record: InteractionRecord) -> bool:
    """Whether Discord has the app's initial response, waiting for one already on its way over HTTP.

    Over real HTTP the fake learns of the answer only when its own sending thread has read it, a moment
    after the app wrote it; an app that edits right after answering (a WSGI close callback) would
    otherwise race that thread. So a call arriving while the answer is in flight waits for it (never
    past Discord's 3 seconds). An app that edits *before* answering still fails: its answer cannot
    arrive while it waits on the edit. Through a Flask test client the answer is read before the
    response is closed, so nothing is in flight and nothing waits.
    """
    if record.acknowledged or not record.answer_in_flight or record.sent_at is None:
        return record.acknowledged
    deadline = record.sent_at + ctx.world.initial_response_deadline
    ctx.world.answers.wait_for(
        lambda: record.acknowledged or not record.answer_in_flight,
        timeout=max(0.0, deadline - time.monotonic()),
    )
    return record.acknowledged


def _author(ctx: p.Context, record: InteractionRecord) -> dict[str, Any]:
    bot = ctx.world.bots[record.application_id]
    return ctx.world.users[bot.user_id].to_json()


def _record(ctx: p.Context, record: InteractionRecord, kind: str, body: Any, *, status: int = 200) -> None:
    ctx.world.record_interaction_response(
        record.token,
        kind,
        body,
        method=ctx.request.method,
        acknowledged_before=record.acknowledged,
        status=status,
    )


def _edit(message: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("content", "embeds", "components", "allowed_mentions", "flags"):
        if key in body:
            message[key] = echoed(key, body[key])


ORIGINAL = "/webhooks/{application_id}/{token}/messages/@original"
MESSAGE = "/webhooks/{application_id}/{token}/messages/{message_id}"
FOLLOWUPS = "/webhooks/{application_id}/{token}"
CALLBACK = "/interactions/{interaction_id}/{token}/callback"


@p.route("GET", ORIGINAL, family="webhook", auth="none", major=("application_id", "token"))
def get_original(ctx: p.Context) -> p.Reply:
    record = _interaction(ctx)
    if record.original is None:
        raise p.discord_error(404, 10008, "Unknown Message")
    return p.json_reply(public_message(record.original))


@p.route("PATCH", ORIGINAL, family="webhook", auth="none", major=("application_id", "token"))
def edit_original(ctx: p.Context) -> p.Reply:
    record = _interaction(ctx, "edit_original")
    body = ctx.json_object()
    validate_message(body, allow_empty=True)
    if record.original is None:
        record.original = build_message("0", _author(ctx, record), body)
    _edit(record.original, body)
    _record(ctx, record, "edit_original", body)
    return p.json_reply(public_message(record.original))


@p.route("DELETE", ORIGINAL, family="webhook", auth="none", major=("application_id", "token"))
def delete_original(ctx: p.Context) -> p.Reply:
    record = _interaction(ctx, "delete_original")
    if record.original is None:
        raise p.discord_error(404, 10008, "Unknown Message")
    record.original = None
    _record(ctx, record, "delete_original", None, status=204)
    return p.no_content()


@p.route("POST", FOLLOWUPS, family="webhook", auth="none", major=("application_id", "token"))
def create_followup(ctx: p.Context) -> p.Reply:
    record = _interaction(ctx, "followup")
    body = ctx.json_object()
    validate_message(body)
    message = build_message("0", _author(ctx, record), body)
    record.followups[message["id"]] = message
    _record(ctx, record, "followup", body)
    return p.json_reply(public_message(message))


@p.route("PATCH", MESSAGE, family="webhook", auth="none", major=("application_id", "token"))
def edit_followup(ctx: p.Context) -> p.Reply:
    record = _interaction(ctx, "edit_followup")
    message = record.followups.get(ctx.params["message_id"])
    if message is None:
        raise p.discord_error(404, 10008, "Unknown Message")
    body = ctx.json_object()
    validate_message(body, allow_empty=True)
    _edit(message, body)
    _record(ctx, record, "edit_followup", body)
    return p.json_reply(public_message(message))


@p.route("POST", CALLBACK, family="interaction_callback", auth="none", major=("interaction_id",))
def callback(ctx: p.Context) -> p.Reply:
    record = ctx.world.interactions.get(ctx.params["token"])
    late = record is not None and (time.monotonic() - record.age_origin > ctx.world.initial_response_deadline)
    if record is None or record.id != ctx.params["interaction_id"] or late:
        raise p.discord_error(404, 10062, "Unknown interaction")
    if record.acknowledged:
        raise p.discord_error(400, 40060, "Interaction has already been acknowledged.")
    body = ctx.json_object()
    kind = body.get("type")
    if kind not in CALLBACK_TYPES:
        raise p.invalid_form({"type": p.field_error("BASE_TYPE_CHOICES", "Invalid type")})
    data = body.get("data") or {}
    if kind in (4, 7):
        validate_message(data)
    record.acknowledged = True
    if kind == 4:
        record.original = build_message("0", _author(ctx, record), data)
    ctx.world.record_interaction_response(
        record.token, "callback", body, method="POST", acknowledged_before=False, status=204
    )
    ctx.world.answers.notify_all()
    return p.no_content()
