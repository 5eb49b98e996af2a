"""Switching metrics on for an app, and its opt-in scrape endpoint (``DISCORD_ROLES_METRICS_PATH``)."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

from flask_discord_roles._metrics.exposition import render
from flask_discord_roles._metrics.instruments import PrometheusRecorder
from flask_discord_roles._runtime.state import DiscordRolesState, get_state

ENDPOINT = "discord_roles_metrics"


def turn_on(state: DiscordRolesState) -> None:
    """Record the app's telemetry in the Prometheus instruments; a :class:`ConfigurationError` naming the
    ``[metrics]`` extra if prometheus-client is not installed."""
    if state.telemetry.recorder is None:
        state.telemetry.recorder = PrometheusRecorder()


def install_endpoint(app: Flask, path: str, token: str | None) -> None:
    """Serve the scrape at ``path``; with ``token``, only to ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode() if token else None

    def metrics() -> Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            # Compared in constant time; the token is never echoed, logged or put in the answer.
            if not hmac.compare_digest(given, expected):
                return Response(
                    "a bearer token is required\n",
                    status=401,
                    mimetype="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        state = get_state()
        body, content_type = render(state, state.db.engine)
        return Response(body, status=200, content_type=content_type, headers={"Cache-Control": "no-store"})

    if ENDPOINT not in app.view_functions:  # init_app may run again on the same app
        app.add_url_rule(path, endpoint=ENDPOINT, view_func=metrics, methods=["GET"])
