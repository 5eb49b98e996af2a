"""Claim codes: what ties a guest order to the Discord user who types it into ``/claim code:…``.

A code is the order id followed by a 12-character HMAC of the store and order, keyed by the app's
secret: ``order-1234-7QX3M0R9KD2A``. Nothing is stored, so the host can show the code on any page or
email at any time, and it stays the same. Without the secret nobody can make a code for someone else's
order; 60 bits of MAC cannot be guessed through an endpoint Discord rate-limits.
"""

from __future__ import annotations

import hashlib
import hmac

from flask_discord_roles.errors import ConfigurationError

# Crockford's base32: no I, L, O or U, so a code read aloud or retyped survives.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
MAC_LENGTH = 12


class ClaimCodeSecretMissing(ConfigurationError):
    """Claim codes need ``DISCORD_ROLES_CLAIM_CODE_SECRET`` or the app's ``SECRET_KEY`` (a
    :class:`RuntimeError`, as before)."""


def make_claim_code(secret: bytes, store_id: str, order_id: str) -> str:
    """The claim code of ``order_id`` in ``store_id``."""
    return f"{order_id}-{_mac(secret, store_id, order_id)}"


def order_of_claim_code(secret: bytes, store_id: str, code: str) -> str | None:
    """The order id ``code`` was made for in ``store_id``, or None when it is not one of its codes."""
    order_id, dash, mac = code.strip().rpartition("-")
    if not dash or not order_id:
        return None
    typed = mac.upper().translate(_LOOK_ALIKES)
    expected = _mac(secret, store_id, order_id)
    return order_id if hmac.compare_digest(typed.encode(), expected.encode()) else None


def _mac(secret: bytes, store_id: str, order_id: str) -> str:
    # The store id's length is part of the message, so ("a", "b-c") and ("a-b", "c") never collide.
    message = f"claim:{len(store_id)}:{store_id}:{order_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    return "".join(_ALPHABET[(number >> (5 * i)) & 31] for i in range(MAC_LENGTH))
