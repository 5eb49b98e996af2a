"""Encryption of the secrets we keep: bot tokens and customers' OAuth tokens.

Fernet gives authenticated encryption; MultiFernet lets a store rotate keys: the first key encrypts,
every key decrypts, and :meth:`TokenCipher.rotate` re-encrypts an old ciphertext under the first key.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from flask_discord_roles.errors import ConfigurationError, DiscordRolesError


class EncryptionKeyError(ConfigurationError, ValueError):
    """A configured encryption key is missing or is not a Fernet key (a :class:`ValueError`, as before)."""


class DecryptionError(DiscordRolesError):
    """A stored secret could not be decrypted with any configured key.

    The message never contains the ciphertext or any key: it only says what to check.
    """


def generate_key() -> str:
    """Return a new random Fernet key (url-safe base64, 32 bytes) as text."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(value: str | Iterable[str] | None) -> list[str]:
    """Split a key list given as a list or as comma/whitespace-separated text."""
    if value is None:
        return []
    if isinstance(value, str):
        parts = value.replace(",", " ").split()
    else:
        parts = [str(part).strip() for part in value]
    return [part for part in parts if part]


class TokenCipher:
    """Encrypts and decrypts short secrets with a rotating list of Fernet keys."""

    def __init__(self, keys: Iterable[str]) -> None:
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError) as exc:
                # The key itself is never echoed: it is a secret even when malformed.
                raise EncryptionKeyError(
                    f"key #{position} in DISCORD_ROLES_ENCRYPTION_KEYS is not a Fernet key "
                    "(32 url-safe base64-encoded bytes); make one with "
                    "`flask discord-roles generate-key`"
                ) from exc
        if not fernets:
            raise EncryptionKeyError("DISCORD_ROLES_ENCRYPTION_KEYS holds no key")
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"<TokenCipher keys={self.key_count}>"

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` under the first (newest) key."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """Decrypt with whichever configured key made ``ciphertext``."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise DecryptionError(
                "a stored secret could not be decrypted with any key in "
                "DISCORD_ROLES_ENCRYPTION_KEYS; was a key removed before rotation finished?"
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt ``ciphertext`` under the first key (a no-op in meaning, new bytes)."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise DecryptionError(
                "a stored secret could not be rotated: no configured key decrypts it"
            ) from exc
