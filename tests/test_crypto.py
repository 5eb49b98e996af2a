"""Secrets at rest: Fernet encryption, key rotation, and no secret in reprs or errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles._runtime.crypto import DecryptionError, TokenCipher, generate_key, parse_keys
from flask_discord_roles._runtime.state import get_state

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.ABcDEf.secret-token-value"


def test_round_trip_and_ciphertext_hides_the_token() -> None:
    cipher = TokenCipher([generate_key()])
    ciphertext = cipher.encrypt(TOKEN)
    assert TOKEN not in ciphertext
    assert cipher.decrypt(ciphertext) == TOKEN


def test_rotation_old_ciphertexts_still_read_and_rotate_moves_them_to_the_new_key() -> None:
    old_key, new_key = generate_key(), generate_key()
    old_ciphertext = TokenCipher([old_key]).encrypt(TOKEN)
    both = TokenCipher([new_key, old_key])
    assert both.decrypt(old_ciphertext) == TOKEN
    rotated = both.rotate(old_ciphertext)
    assert TokenCipher([new_key]).decrypt(rotated) == TOKEN, "rotate must re-encrypt under key #1"
    with pytest.raises(DecryptionError):
        TokenCipher([old_key]).decrypt(rotated)


def test_decrypting_with_the_wrong_key_explains_without_leaking() -> None:
    ciphertext = TokenCipher([generate_key()]).encrypt(TOKEN)
    with pytest.raises(DecryptionError) as excinfo:
        TokenCipher([generate_key()]).decrypt(ciphertext)
    assert ciphertext not in str(excinfo.value)
    assert "DISCORD_ROLES_ENCRYPTION_KEYS" in str(excinfo.value)


def test_repr_shows_no_key() -> None:
    key = generate_key()
    assert key not in repr(TokenCipher([key]))


def test_parse_keys_accepts_lists_and_separated_text() -> None:
    assert parse_keys("a, b  c") == ["a", "b", "c"]
    assert parse_keys(["a", " b "]) == ["a", "b"]
    assert parse_keys(None) == []


def test_generate_key_command_prints_a_usable_key(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["discord-roles", "generate-key"])
    assert result.exit_code == 0, result.output
    Fernet(result.output.strip().encode())


def test_rotate_keys_command_reencrypts_stored_tokens(app: Flask, db: SQLAlchemy) -> None:
    state = get_state(app)
    models = state.models
    old_key = generate_key()
    old_cipher = TokenCipher([old_key])
    db.session.add(
        models.StoreBot(
            store_id="store-1",
            application_id="123456789012345678",
            public_key="a" * 64,
            token_ciphertext=old_cipher.encrypt(TOKEN),
        )
    )
    db.session.add(
        models.DiscordAccount(
            store_id="store-1",
            customer_id="c1",
            discord_user_id="223456789012345678",
            access_token_ciphertext=old_cipher.encrypt("oauth-access"),
            refresh_token_ciphertext=old_cipher.encrypt("oauth-refresh"),
        )
    )
    db.session.commit()

    new_key = generate_key()
    state.cipher = TokenCipher([new_key, old_key])
    result = app.test_cli_runner().invoke(args=["discord-roles", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "2 record(s)" in result.output

    only_new = TokenCipher([new_key])
    bot = db.session.scalars(sa.select(models.StoreBot)).one()
    account = db.session.scalars(sa.select(models.DiscordAccount)).one()
    assert only_new.decrypt(bot.token_ciphertext) == TOKEN
    assert account.access_token_ciphertext is not None
    assert only_new.decrypt(account.access_token_ciphertext) == "oauth-access"


def test_rotate_keys_with_a_missing_key_changes_nothing(app: Flask, db: SQLAlchemy) -> None:
    state = get_state(app)
    ciphertext = TokenCipher([generate_key()]).encrypt(TOKEN)
    db.session.add(
        state.models.StoreBot(
            store_id="s",
            application_id="123456789012345678",
            public_key="a" * 64,
            token_ciphertext=ciphertext,
        )
    )
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["discord-roles", "rotate-keys"])
    assert result.exit_code != 0
    assert "Nothing was changed" in result.output
    db.session.expire_all()
    stored = db.session.scalars(sa.select(state.models.StoreBot.token_ciphertext)).one()
    assert stored == ciphertext
