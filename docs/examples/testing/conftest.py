from dataclasses import dataclass

import pytest
from shop import create_app, db, discord_roles

from flask_discord_roles import bots, guilds
from flask_discord_roles.testing import FakeBot, FakeGuild, FakeRole
from flask_discord_roles.testing.permissions import MANAGE_GUILD


@pytest.fixture
def app(fake_discord, tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.sqlite'}",
            # Settings are read once, by init_app: point the app at the fake as it is built.
            "DISCORD_ROLES_API_BASE_URL": fake_discord.api_base_url,
            # Deliveries run right after each commit, in the test's own thread.
            "DISCORD_ROLES_EXECUTOR": "inline",
            "DISCORD_ROLES_STORE_ID": "store-1",
        }
    )
    with app.app_context():
        db.create_all()
        yield app
        db.drop_all()
    # Stops the thread executor (the default), if the app started it; the inline one has nothing to stop.
    discord_roles.shutdown(app)


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Store:
    bot: FakeBot
    guild: FakeGuild
    vip: FakeRole


@pytest.fixture
def store(app, client, fake_discord):
    """Store "store-1" set up as its owner would: bot saved, server linked with /link, VIP mapped."""
    bot = fake_discord.create_bot("Shop Bot")
    guild = fake_discord.create_guild("Shop Server")
    vip = fake_discord.create_role(guild.id, "VIP")
    fake_discord.add_bot_to_guild(bot, guild.id)  # with Manage Roles, its role above VIP

    bots.save_bot(
        "store-1",
        application_id=bot.application_id,
        public_key=bot.public_key,
        bot_token=bot.token,
        client_secret=bot.client_secret,  # customers link Discord through the store's application
    )
    issued = guilds.create_link_code("store-1")
    db.session.commit()

    owner = fake_discord.create_user("owner")
    fake_discord.add_member(guild.id, owner.id)
    link = fake_discord.command_payload(
        bot, guild.id, owner, "link", {"code": issued.code}, member_permissions=str(MANAGE_GUILD)
    )
    fake_discord.send_interaction("/webhook/discord/interactions/store-1", bot, link, client=client)

    guilds.create_mapping("store-1", "vip-pack", guild.id, vip.id)
    db.session.commit()
    return Store(bot, guild, vip)
