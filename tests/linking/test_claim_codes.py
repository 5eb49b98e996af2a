"""Claim codes: stable per order, bound to the store and the secret, forgiving of how they are typed."""

from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles, claim_code
from flask_discord_roles._core.claim_codes import make_claim_code, order_of_claim_code
from flask_discord_roles.claim_codes import ClaimCodeSecretMissing

SECRET = b"shop secret"


def test_a_code_names_its_order_and_reads_back_only_in_its_store() -> None:
    code = make_claim_code(SECRET, "store-1", "order-1234")
    assert code == make_claim_code(SECRET, "store-1", "order-1234"), "the same order, the same code"
    assert order_of_claim_code(SECRET, "store-1", code) == "order-1234"
    assert order_of_claim_code(SECRET, "store-2", code) is None, "another store's code"
    assert order_of_claim_code(b"other secret", "store-1", code) is None, "made without our secret"
    assert order_of_claim_code(SECRET, "store-1", code.replace("order-1234", "order-1235")) is None


def test_codes_survive_case_spaces_and_look_alike_letters() -> None:
    code = make_claim_code(SECRET, "s", "o")
    mac = code.rpartition("-")[2]
    retyped = "o-" + mac.lower().replace("0", "o").replace("1", "l")
    assert order_of_claim_code(SECRET, "s", f"  {retyped} ") == "o"


def test_ids_cannot_be_shifted_between_store_and_order() -> None:
    assert (
        make_claim_code(SECRET, "a", "b-c").rpartition("-")[2]
        != make_claim_code(SECRET, "a-b", "c").rpartition("-")[2]
    )


@pytest.mark.parametrize("code", ["", "-", "nodash", "order-", "-ABCDEFGHJKMN", "order-ABC"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert order_of_claim_code(SECRET, "store-1", code) is None


def test_the_public_function_uses_secret_key_and_says_when_there_is_none() -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="host secret")
    DiscordRoles(app, db=SQLAlchemy(app))
    with app.app_context():
        assert claim_code("store-1", 42) == make_claim_code(b"host secret", "store-1", "42")

    bare = Flask(__name__)
    bare.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://")
    DiscordRoles(bare, db=SQLAlchemy(bare))
    with bare.app_context(), pytest.raises(ClaimCodeSecretMissing, match="SECRET_KEY"):
        claim_code("store-1", "order-1")


def test_a_dedicated_secret_wins_over_secret_key() -> None:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SECRET_KEY="rotating session key",
        DISCORD_ROLES_CLAIM_CODE_SECRET="claim codes only",
    )
    DiscordRoles(app, db=SQLAlchemy(app))
    with app.app_context():
        assert claim_code("s", "o") == make_claim_code(b"claim codes only", "s", "o")
