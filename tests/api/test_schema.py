"""The tenant API against its own OpenAPI description: schemathesis generates requests for every
operation, sends them with a valid token to an app wired to FakeDiscord, and checks that nothing answers
5xx and every answer (status, headers, body) is one the description allows.

Bounded in examples per operation so the run stays quick; the store it runs against has a bot, a linked
server, a mapping, deliveries and a backfill, so the generated requests reach the code behind the 404s.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from flask_discord_roles import backfills, guilds
from flask_discord_roles.testing import FakeDiscord
from tests.api import PREFIX, Api
from tests.shop import Shop

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
"""Conformance, not semantics: a well-formed request for a guild this store never linked is rightly a
404 or 422, so schemathesis's positive-data-acceptance check does not apply."""


EXAMPLES_PER_OPERATION = 8
"""Enough to reach each operation's branches (found, not found, invalid) without slowing the suite."""


@pytest.fixture
def api(api: Api, shop: Shop, fake_discord: FakeDiscord) -> Api:
    """The folder's client, for a store with a linked server, VIP mapped and two orders placed."""
    shop.link()
    shop.map("vip", "VIP")
    buyer = shop.member("buyer")
    shop.buy("order-1", "vip", buyer=buyer, customer="customer-1")
    shop.buy("order-2", "vip", buyer=fake_discord.create_user("stranger").id, customer="customer-2")
    (mapping,) = guilds.list_mappings(shop.store_id)
    backfills.start_backfill(shop.store_id, mapping.id)  # so /backfills has one to list
    shop.db.session.commit()
    return api


def test_the_description_documents_every_route(app: Flask) -> None:
    documented = app.test_client().get(f"{PREFIX}/openapi.json").json["paths"]
    routes = {
        rule.rule[len(PREFIX) :]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("discord_roles_api.") and not rule.endpoint.endswith("._unknown")
    }
    as_openapi = {route.replace("<int:", "{").replace("<", "{").replace(">", "}") for route in routes}
    assert as_openapi == set(documented)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_conforms_to_the_description(app: Flask, api: Api, mode: GenerationMode) -> None:
    """Valid requests and ones the description forbids alike: never a 5xx, never an undocumented answer."""
    # Driven by hand rather than by schemathesis's pytest integration, which reaches into a pytest
    # internal that pytest 9 no longer has; each operation still gets its own Hypothesis run.
    schema = schemathesis.openapi.from_wsgi(f"{PREFIX}/openapi.json", app)
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(headers=api.headers(), checks=CHECKS)

        try:
            conforms()
        except Exception as failure:
            failures.append(f"{operation.label}: {failure}")
        tested += 1
    assert tested >= 25, f"only {tested} operations were found in the description"
    assert not failures, "\n\n".join(failures)
