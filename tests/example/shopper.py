"""A customer's browser without a browser: a ``requests`` session against the running demo."""

from __future__ import annotations

from typing import Any

import requests
import sqlalchemy as sa

from example_app import db
from example_app.demo import PASSWORD, Demo
from example_app.models import Customer, Package


class Shopper:
    """A customer's browser: a cookie jar against the running storefront."""

    def __init__(self, demo: Demo, email: str) -> None:
        self.demo = demo
        self.session = requests.Session()
        signed_in = self.post("/login", {"email": email, "password": PASSWORD})
        assert "Welcome back" in signed_in.text, f"{email} could not sign in"
        with demo.app.app_context():
            found = db.session.scalars(sa.select(Customer.id).where(Customer.email == email)).one()
            db.session.remove()
        self.customer_id = str(found)  # the id the extension knows this customer by

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.demo.url + path, timeout=10, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.demo.url + path, data=data or {}, timeout=10, **kwargs)

    def link_discord(self, username: str, next_path: str = "/account") -> str:
        """The OAuth dance: our /discord/link, Discord's authorize (it consents as ``username``), back."""
        self.demo.sandbox.fake.oauth_login_as(self.demo.sandbox.users[username])
        welcome = self.get("/discord/link", params={"next": next_path})
        assert "Discord linked" in welcome.text, f"linking {username} failed: {welcome.text[:300]}"
        return welcome.text

    def buy(self, package: str) -> int:
        with self.demo.app.app_context():
            package_id = db.session.scalars(sa.select(Package.id).where(Package.name == package)).one()
        paid = self.post(f"/checkout/{package_id}")
        assert paid.status_code == 200, f"buying {package} answered {paid.status_code}"
        assert "is paid" in paid.text, f"buying {package} did not confirm the payment"
        return int(paid.url.rsplit("/", 1)[1])


def member_roles(demo: Demo, username: str) -> set[str]:
    """The names of the roles a Discord user holds in the demo server, as FakeDiscord has them."""
    guild = demo.sandbox.fake.guild(demo.sandbox.guild.id)
    held = demo.sandbox.fake.member_roles(guild.id, demo.sandbox.users[username])
    return {guild.roles[role_id].name for role_id in held}
