"""Routes (paths, bucket keys) and errors (what they carry, what they never show)."""

from __future__ import annotations

import pytest

from flask_discord_roles.discord import (
    DiscordClient,
    DiscordError,
    Forbidden,
    PermanentDiscordError,
    RateLimited,
    Route,
    TokenDisabled,
    TransientDiscordError,
    Unauthorized,
)
from flask_discord_roles.discord import errors as codes

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDe.s3cr3t-t0ken-value_xyz"
ROLE_TEMPLATE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"


def test_route_formats_a_quoted_path_and_keys_its_bucket_by_major_parameters() -> None:
    route = Route("put", ROLE_TEMPLATE, guild_id="1", user_id="2", role_id=3)
    assert route.url_path == "/guilds/1/members/2/roles/3"
    assert route.key == "PUT " + ROLE_TEMPLATE
    assert route.bucket_key == ("PUT " + ROLE_TEMPLATE, ("1",)), "only guild_id is a major parameter"
    other_guild = Route("PUT", ROLE_TEMPLATE, guild_id="9", user_id="2", role_id="3")
    assert other_guild.bucket_key != route.bucket_key, "each guild has its own bucket"
    same_guild = Route("PUT", ROLE_TEMPLATE, guild_id="1", user_id="7", role_id="8")
    assert same_guild.bucket_key == route.bucket_key, "members of one guild share the guild's bucket"


def test_webhook_routes_quote_the_token_key_by_it_and_never_show_it() -> None:
    route = Route(
        "POST", "/webhooks/{webhook_id}/{interaction_token}", webhook_id="5", interaction_token="a/b?c"
    )
    assert route.url_path == "/webhooks/5/a%2Fb%3Fc", "a token must not be able to change the path"
    assert route.major == ("5", "a/b?c"), "each interaction token is its own bucket"
    assert route.is_webhook
    assert "a/b?c" not in repr(route)


def test_errors_say_what_went_wrong_and_where() -> None:
    error = Forbidden("Missing Permissions", status=403, code=codes.MISSING_PERMISSIONS, route="PUT /x")
    assert isinstance(error, PermanentDiscordError)
    assert (error.status, error.code, error.message, error.route) == (
        403,
        50013,
        "Missing Permissions",
        "PUT /x",
    )
    assert str(error) == "403 code 50013: Missing Permissions on PUT /x"
    limited = RateLimited("slow down", retry_after=1.5, is_global=True, scope="global", route="GET /y")
    assert isinstance(limited, TransientDiscordError)
    assert (limited.status, limited.retry_after, limited.is_global, limited.scope) == (
        429,
        1.5,
        True,
        "global",
    )
    assert issubclass(TokenDisabled, Unauthorized)


def test_error_codes_are_discords() -> None:
    assert (codes.UNKNOWN_GUILD, codes.UNKNOWN_MEMBER, codes.UNKNOWN_ROLE, codes.UNKNOWN_USER) == (
        10004,
        10007,
        10011,
        10013,
    )
    assert (codes.UNKNOWN_INTERACTION, codes.MISSING_ACCESS, codes.MISSING_PERMISSIONS) == (
        10062,
        50001,
        50013,
    )
    assert codes.INVALID_FORM_BODY == 50035


def test_client_repr_never_shows_the_token() -> None:
    with DiscordClient(TOKEN) as client:
        assert TOKEN not in repr(client)
        assert TOKEN[:24] not in repr(client), "not even the part that encodes the bot's id"


def test_token_disabled_is_raised_without_touching_the_network() -> None:
    class NoNetwork:
        def request(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("a disabled token must not be sent")

        def close(self) -> None:
            pass

    client = DiscordClient(TOKEN, session=NoNetwork())  # type: ignore[arg-type]
    client._disabled.set()
    with pytest.raises(TokenDisabled) as excinfo:
        client.get_current_user()
    assert excinfo.value.status == 401
    assert TOKEN not in str(excinfo.value) + repr(excinfo.value)
    assert isinstance(excinfo.value, DiscordError)
