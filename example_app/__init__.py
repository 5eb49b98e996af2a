"""A minimal storefront that embeds flask-discord-roles the way a host would.

It keeps its own packages and orders, and lets the extension keep everything Discord. SQLite in the
instance folder by default; set ``DATABASE_URL`` for PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_migrate import upgrade as upgrade_shop_tables
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData

from flask_discord_roles import DiscordRoles, generate_key
from flask_discord_roles import migrations as discord_roles_migrations

# The host's own naming convention; ours are explicit names, so the two never clash.
db = SQLAlchemy(
    metadata=MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
)
migrate = Migrate()
login = LoginManager()
csrf = CSRFProtect()  # the storefront's forms; the extension's webhook and API exempt themselves
discord_roles = DiscordRoles()
STORE_ID = "demo-store"

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def upgrade_database() -> None:
    """What a deploy runs, in the current app: ``flask discord-roles db upgrade`` (the extension's tables,
    in their own version table), then ``flask db upgrade`` (the shop's own, in ``migrations/``)."""
    discord_roles_migrations.upgrade()
    upgrade_shop_tables(directory=MIGRATIONS_DIR)


def _demo_encryption_key(instance_path: str) -> str:
    """A key kept in the instance folder, so the demo's stored tokens survive restarts.

    A real store sets DISCORD_ROLES_ENCRYPTION_KEYS from its secret store instead.
    """
    key_file = Path(instance_path) / "discord_roles.key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(generate_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "demo-only-secret-key"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'example.sqlite'}"
        ),
        DISCORD_ROLES_API_BASE_URL=os.environ.get(
            "DISCORD_ROLES_API_BASE_URL", "https://discord.com/api/v10"
        ),
        # Where the shop is reached from outside (required unless TESTING or debug); `make demo` sets it.
        DISCORD_ROLES_PUBLIC_BASE_URL=os.environ.get("DISCORD_ROLES_PUBLIC_BASE_URL"),
        STORE_ID=STORE_ID,
    )
    app.config["DISCORD_ROLES_ENCRYPTION_KEYS"] = os.environ.get(
        "DISCORD_ROLES_ENCRYPTION_KEYS"
    ) or _demo_encryption_key(app.instance_path)
    if config:
        app.config.update(config)
    # One store in this storefront; a multi-store host registers @discord_roles.current_store_loader.
    app.config.setdefault("DISCORD_ROLES_STORE_ID", app.config["STORE_ID"])

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    login.init_app(app)
    csrf.init_app(app)
    # Customers are known to the extension by Flask-Login's user id: its default customer loader.
    discord_roles.init_app(app)

    from . import models
    from .auth import auth
    from .dashboard import dashboard
    from .shop import shop

    login.login_view = "auth.login"
    login.login_message = "Sign in to continue."
    login.user_loader(lambda user_id: db.session.get(models.Customer, int(user_id)))
    app.register_blueprint(auth)
    app.register_blueprint(shop)
    app.register_blueprint(dashboard, url_prefix="/dashboard")
    return app
