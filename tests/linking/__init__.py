"""Linking: customers' Discord accounts (OAuth), claim codes, and the public addresses we hand out."""

from __future__ import annotations

from typing import Any

from tests.api import API_CONFIG

LINKING_CONFIG: dict[str, Any] = {
    **API_CONFIG,
    "SECRET_KEY": "a secret for the session cookie",
    "DISCORD_ROLES_STORE_ID": "store-1",
}
"""A host app that links accounts: the API's settings, a secret for the session the OAuth flow keeps its
state in, and the store its customers link for."""
