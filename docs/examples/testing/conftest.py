import pytest
from shop import create_app, db, discord_roles

from flask_discord_roles import bots, guilds


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


@pytest.fixture
def store(app, client, discord_world):
    """Store "store-1" set up as its owner would: bot saved, server linked with /link, VIP mapped.

    discord_world is the plugin's ready Discord: "Shop Bot" in "Shop Server" with Manage Roles, its
    role above "VIP" and "Supporter", and the members "alice" and "bob".
    """
    world = discord_world
    world.interactions_url = "/webhook/discord/interactions/store-1"  # where commands are sent
    bots.save_bot(
        "store-1",
        application_id=world.bot.application_id,
        public_key=world.bot.public_key,
        bot_token=world.bot.token,
        client_secret=world.bot.client_secret,  # customers link Discord through the store's application
    )
    issued = guilds.create_link_code("store-1")
    db.session.commit()

    world.send_command(client, "link", {"code": issued.code}, user=world.owner)

    guilds.create_mapping("store-1", "vip-pack", world.guild.id, world.roles["VIP"].id)
    db.session.commit()
