"""The OAuth2 URLs and PKCE values we send to Discord."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from flask_discord_roles.discord.oauth import authorize_endpoint_for, authorize_url, new_pkce, s256


@pytest.mark.parametrize(
    ("api", "page"),
    [
        ("https://discord.com/api/v10", "https://discord.com/oauth2/authorize"),
        ("https://discord.com/api/v10/", "https://discord.com/oauth2/authorize"),
        ("https://discord.com/api", "https://discord.com/oauth2/authorize"),
        ("http://127.0.0.1:5000/api/v9", "http://127.0.0.1:5000/oauth2/authorize"),
    ],
)
def test_the_consent_page_is_on_the_site_not_under_the_versioned_api(api: str, page: str) -> None:
    assert authorize_endpoint_for(api) == page


def test_pkce_uses_s256_of_a_long_random_verifier() -> None:
    first, second = new_pkce(), new_pkce()
    assert first.verifier != second.verifier
    assert 43 <= len(first.verifier) <= 128, "RFC 7636 bounds"
    # RFC 7636 appendix B's example.
    assert (
        s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert first.verifier not in repr(first)


def test_the_authorize_url_asks_for_a_code_with_pkce_and_state() -> None:
    url = authorize_url(
        "https://discord.com/oauth2/authorize",
        client_id="123456789012345678",
        redirect_uri="https://shop.example.com/discord/callback",
        scopes=["identify", "guilds.join"],
        state="the-state",
        code_challenge="the-challenge",
    )
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "response_type": ["code"],
        "client_id": ["123456789012345678"],
        "redirect_uri": ["https://shop.example.com/discord/callback"],
        "scope": ["identify guilds.join"],
        "state": ["the-state"],
        "code_challenge": ["the-challenge"],
        "code_challenge_method": ["S256"],
        "prompt": ["consent"],
    }
