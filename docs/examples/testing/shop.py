"""The shop under test: a small storefront that delivers Discord roles (your app, in your project)."""

from flask import Flask, session
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles

db = SQLAlchemy()
discord_roles = DiscordRoles()


def create_app(test_config=None):
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///shop.sqlite"
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_SQLALCHEMY_DATABASE_URI, ...
    if test_config is not None:
        app.config.update(test_config)  # before init_app: it reads the settings once
    db.init_app(app)
    discord_roles.init_app(app, db=db)

    @app.post("/login/<customer_id>")
    def login(customer_id):
        session["customer_id"] = customer_id
        return "", 204

    return app


@discord_roles.customer_loader
def current_customer():
    return session.get("customer_id")
