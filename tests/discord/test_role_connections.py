"""Our clients' Linked Roles calls against FakeDiscord over HTTP: the bot's metadata records, the user's
role connection with their Bearer token, and Discord's refusals as our errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from flask_discord_roles.discord import (
    BadRequest,
    DiscordClient,
    DiscordUserClient,
    Forbidden,
    RoleConnection,
    RoleConnectionMetadata,
    RoleConnectionMetadataType,
    TokenDisabled,
    Unauthorized,
)
from flask_discord_roles.discord.errors import INVALID_FORM_BODY, MISSING_ACCESS
from flask_discord_roles.discord.oauth import ROLE_CONNECTIONS_WRITE, authorize_url
from flask_discord_roles.discord.role_connections import metadata_value
from flask_discord_roles.testing import FakeBot, FakeDiscord, FakeUser

PURCHASES = RoleConnectionMetadata(
    key="purchases",
    name="Purchases",
    description="Orders paid for",
    type=RoleConnectionMetadataType.INTEGER_GREATER_THAN_OR_EQUAL,
    name_localizations={"fr": "Achats"},
)
MEMBER_SINCE = RoleConnectionMetadata(
    key="member_since",
    name="Customer since",
    description="First order",
    type=RoleConnectionMetadataType.DATETIME_GREATER_THAN_OR_EQUAL,
)
VIP = RoleConnectionMetadata(
    key="vip", name="VIP", description="Holds a VIP plan", type=RoleConnectionMetadataType.BOOLEAN_EQUAL
)


@pytest.fixture
def bot(fake_discord: FakeDiscord) -> FakeBot:
    return fake_discord.create_bot("Example Shop")


@pytest.fixture
def buyer(fake_discord: FakeDiscord) -> FakeUser:
    return fake_discord.create_user("buyer")


@pytest.fixture
def bot_client(fake_discord: FakeDiscord, bot: FakeBot) -> Iterator[DiscordClient]:
    with DiscordClient(bot.token, base_url=fake_discord.api_base_url, max_retries=0) as client:
        yield client


@pytest.fixture
def user_client(fake_discord: FakeDiscord, bot: FakeBot, buyer: FakeUser) -> Iterator[DiscordUserClient]:
    """The buyer's client: their token for the shop's application, with ``role_connections.write``."""
    token = fake_discord.create_user_token(bot, buyer, ["identify", ROLE_CONNECTIONS_WRITE])
    with DiscordUserClient(token, base_url=fake_discord.api_base_url, max_retries=0) as client:
        yield client


def test_the_bot_replaces_and_reads_its_metadata_records(
    fake_discord: FakeDiscord, bot: FakeBot, bot_client: DiscordClient
) -> None:
    assert bot_client.get_role_connection_metadata(bot.application_id) == []
    saved = bot_client.put_role_connection_metadata(bot.application_id, [PURCHASES, MEMBER_SINCE, VIP])
    assert saved == [PURCHASES, MEMBER_SINCE, VIP]
    assert bot_client.get_role_connection_metadata(bot.application_id) == saved
    assert isinstance(saved[0].type, RoleConnectionMetadataType), "types come back as the enum"
    assert fake_discord.role_connection_metadata(bot.application_id)[0] == {
        "type": 2,
        "key": "purchases",
        "name": "Purchases",
        "description": "Orders paid for",
        "name_localizations": {"fr": "Achats"},
    }
    assert bot_client.put_role_connection_metadata(bot.application_id, [VIP]) == [VIP], "a PUT replaces all"
    sent = fake_discord.calls_to("PUT", r"/role-connections/metadata$")[-1]
    assert sent.auth == "bot"


@pytest.mark.breaks_discord_spec  # sends what Discord refuses, to see the refusal
def test_refused_records_raise_bad_request_with_discords_field_errors(
    fake_discord: FakeDiscord, bot: FakeBot, bot_client: DiscordClient
) -> None:
    bot_client.put_role_connection_metadata(bot.application_id, [VIP])
    six = [RoleConnectionMetadata(f"field_{n}", "Field", "A field", 1) for n in range(6)]
    with pytest.raises(BadRequest) as too_many:
        bot_client.put_role_connection_metadata(bot.application_id, six)
    assert too_many.value.code == INVALID_FORM_BODY
    assert too_many.value.errors == {
        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 5 or fewer in length."}]
    }
    bad_key = RoleConnectionMetadata("Paid-Orders", "Paid orders", "How many", 2)
    with pytest.raises(BadRequest) as refused:
        bot_client.put_role_connection_metadata(bot.application_id, [bad_key])
    assert refused.value.errors is not None
    assert refused.value.errors["0"]["key"]["_errors"][0]["code"] == "STRING_TYPE_REGEX"
    assert bot_client.get_role_connection_metadata(bot.application_id) == [VIP], "a refusal changed nothing"


def test_another_applications_metadata_is_forbidden(
    fake_discord: FakeDiscord, bot_client: DiscordClient
) -> None:
    other = fake_discord.create_bot("Other Shop")
    with pytest.raises(Forbidden) as refused:
        bot_client.get_role_connection_metadata(other.application_id)
    assert refused.value.code == MISSING_ACCESS


def test_the_user_writes_and_reads_their_role_connection(
    fake_discord: FakeDiscord,
    bot: FakeBot,
    buyer: FakeUser,
    bot_client: DiscordClient,
    user_client: DiscordUserClient,
) -> None:
    bot_client.put_role_connection_metadata(bot.application_id, [PURCHASES, MEMBER_SINCE, VIP])
    assert user_client.get_user_role_connection(bot.application_id) == RoleConnection(), "nothing yet"
    first_order = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    saved = user_client.put_user_role_connection(
        bot.application_id,
        platform_name="Example Shop",
        platform_username="buyer@example.com",
        metadata={"purchases": 3, "member_since": first_order, "vip": True},
    )
    expected = RoleConnection(
        platform_name="Example Shop",
        platform_username="buyer@example.com",
        metadata={"purchases": "3", "member_since": "2026-01-31T12:00:00+00:00", "vip": "1"},
    )
    assert saved == expected
    assert user_client.get_user_role_connection(bot.application_id) == expected
    assert fake_discord.role_connection(buyer, bot.application_id) == {
        "platform_name": "Example Shop",
        "platform_username": "buyer@example.com",
        "metadata": {"purchases": "3", "member_since": "2026-01-31T12:00:00+00:00", "vip": "1"},
    }
    sent = fake_discord.calls_to("PUT", r"/users/@me/applications/\d+/role-connection$")[-1]
    assert sent.auth == "bearer", "the user's call goes with their Bearer token, not the bot's"
    user_client.delete_user_role_connection(bot.application_id)
    assert fake_discord.role_connection(buyer, bot.application_id) is None
    assert user_client.get_user_role_connection(bot.application_id) == RoleConnection()


@pytest.mark.breaks_discord_spec  # sends what Discord refuses, to see the refusal
def test_refused_values_raise_bad_request_and_keep_the_connection(
    fake_discord: FakeDiscord,
    bot: FakeBot,
    buyer: FakeUser,
    bot_client: DiscordClient,
    user_client: DiscordUserClient,
) -> None:
    bot_client.put_role_connection_metadata(bot.application_id, [PURCHASES])
    user_client.put_user_role_connection(bot.application_id, metadata={"purchases": 1})
    with pytest.raises(BadRequest) as refused:
        user_client.put_user_role_connection(
            bot.application_id, platform_name="n" * 51, metadata={"purchases": "three", "refunds": 1}
        )
    errors = refused.value.errors
    assert errors is not None
    assert errors["platform_name"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert errors["metadata"]["purchases"]["_errors"][0]["code"] == "NUMBER_TYPE_COERCE"
    assert errors["metadata"]["refunds"]["_errors"][0]["code"] == "BASE_TYPE_CHOICES"
    assert user_client.get_user_role_connection(bot.application_id).metadata == {"purchases": "1"}


def test_a_token_without_the_scope_is_unauthorized_and_not_sent_again(
    fake_discord: FakeDiscord, bot: FakeBot, buyer: FakeUser
) -> None:
    token = fake_discord.create_user_token(bot, buyer, ["identify"])
    with DiscordUserClient(token, base_url=fake_discord.api_base_url, max_retries=0) as client:
        with pytest.raises(Unauthorized) as refused:
            client.get_user_role_connection(bot.application_id)
        assert not isinstance(refused.value, TokenDisabled), "the first 401 is Discord's own answer"
        assert client.is_disabled
        before = len(fake_discord.calls)
        with pytest.raises(TokenDisabled) as disabled:
            client.put_user_role_connection(bot.application_id, platform_name="Example Shop")
        assert len(fake_discord.calls) == before, "a refused token is not sent again"
        assert "user's access token" in str(disabled.value)
        assert token not in str(disabled.value) + repr(client) + repr(disabled.value)


@pytest.mark.serial  # a rate-limit window: not beside other busy workers
def test_the_client_paces_itself_by_the_user_buckets_headers(
    fake_discord: FakeDiscord, bot: FakeBot, user_client: DiscordUserClient
) -> None:
    fake_discord.set_route_limit("role_connection", 1, 0.3)
    for _ in range(3):
        user_client.get_user_role_connection(bot.application_id)
    assert fake_discord.rate_limit_hits == [], "the client waited for the window instead of taking 429s"


def test_a_token_granted_to_another_application_is_forbidden(
    fake_discord: FakeDiscord, bot: FakeBot, user_client: DiscordUserClient
) -> None:
    other = fake_discord.create_bot("Other Shop")
    with pytest.raises(Forbidden) as refused:
        user_client.put_user_role_connection(other.application_id, platform_name="Other Shop")
    assert refused.value.code == MISSING_ACCESS


def test_the_authorize_url_may_ask_for_the_scope(fake_discord: FakeDiscord, bot: FakeBot) -> None:
    url = authorize_url(
        f"{fake_discord.base_url}/oauth2/authorize",
        client_id=bot.client_id,
        redirect_uri="http://127.0.0.1:5000/discord/callback",
        scopes=["identify", ROLE_CONNECTIONS_WRITE],
        state="s",
        code_challenge="c" * 43,
    )
    assert "scope=identify+role_connections.write" in url


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("gold", "gold"),
        (42, "42"),
        (-1, "-1"),
        (True, "1"),
        (False, "0"),
        (date(2026, 1, 31), "2026-01-31"),
        (datetime(2026, 1, 31, 8, 30, tzinfo=UTC), "2026-01-31T08:30:00+00:00"),
    ],
)
def test_metadata_values_are_written_as_discord_reads_them(value: object, sent: str) -> None:
    assert metadata_value(value) == sent  # type: ignore[arg-type]


def test_a_value_of_another_kind_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(TypeError, match="str, int, bool or date, not float"):
        metadata_value(2.5)  # type: ignore[arg-type]
