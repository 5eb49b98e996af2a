"""Checking that an interaction really comes from Discord: Ed25519 over ``timestamp + raw body``.

Discord signs the exact bytes it sends, so the body is verified as received, never re-serialised. The
check itself is libsodium's (through PyNaCl), which compares in constant time. A replayed request is an
old, validly signed one: the timestamp must also be close to now.
"""

from __future__ import annotations

import re
from functools import lru_cache

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "is_public_key",
    "signature_is_valid",
    "timestamp_is_fresh",
]

SIGNATURE_HEADER = "X-Signature-Ed25519"
TIMESTAMP_HEADER = "X-Signature-Timestamp"

_SIGNATURE_HEX_LENGTH = 128
_PUBLIC_KEY_HEX_LENGTH = 64
_MAX_TIMESTAMP_DIGITS = 12


def is_public_key(value: object) -> bool:
    """Is ``value`` an application public key as Discord shows it (64 hex characters)?"""
    return isinstance(value, str) and len(value) == _PUBLIC_KEY_HEX_LENGTH and _is_hex(value)


def signature_is_valid(public_key: str, signature: str | None, timestamp: str | None, body: bytes) -> bool:
    """Did the holder of ``public_key`` sign ``timestamp + body``? False for anything malformed."""
    if signature is None or timestamp is None:
        return False
    if len(signature) != _SIGNATURE_HEX_LENGTH or not _is_hex(signature):
        return False
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > _MAX_TIMESTAMP_DIGITS:
        return False
    key = _verify_key(public_key)
    if key is None:
        return False
    try:
        key.verify(timestamp.encode() + body, bytes.fromhex(signature))
    except BadSignatureError:
        return False
    return True


def timestamp_is_fresh(timestamp: str, now: float, max_age: float) -> bool:
    """Was the request signed within ``max_age`` seconds of ``now``, either way (clocks drift)?"""
    return abs(now - int(timestamp)) <= max_age


@lru_cache(maxsize=1024)
def _verify_key(public_key: str) -> VerifyKey | None:
    # Building the key costs more than verifying with it; a busy app sees the same few keys again.
    if not is_public_key(public_key):
        return None
    return VerifyKey(bytes.fromhex(public_key))


_HEX = re.compile("[0-9a-fA-F]*")


def _is_hex(value: str) -> bool:
    # A compiled pattern: checking 128 characters one by one in Python cost more than verifying.
    return _HEX.fullmatch(value) is not None
