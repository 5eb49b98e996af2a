"""``python -m example_app``: the storefront and its Discord sandbox, on one machine, offline."""

from __future__ import annotations

import os

from . import create_app
from .sandbox import seed_store, start_sandbox


def main() -> None:
    sandbox = start_sandbox()
    app = create_app(
        {
            "DISCORD_ROLES_API_BASE_URL": sandbox.fake.api_base_url,
            "DEMO_GUILD_ID": sandbox.guild.id,
        }
    )
    seed_store(app, sandbox)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    # What a store owner pastes as the Interactions Endpoint URL: the sandbox sends the commands a
    # person runs there to the storefront's webhook, signed as Discord signs them.
    webhook = f"http://{host}:{port}{app.config['DISCORD_ROLES_INTERACTIONS_PATH']}/{app.config['STORE_ID']}"
    sandbox.fake.set_interactions_url(sandbox.bot, webhook)
    sandbox.fake.interactive_consent = True  # a person clicks Authorize, as on Discord
    guild_page = f"{sandbox.fake.sandbox_url}/guilds/{sandbox.guild.id}"
    print(f"\n  Storefront:   http://{host}:{port}/")
    print(f"  Sandbox:      {guild_page}  (the demo server: its roles and members; run /claim)")
    print(f"  FakeDiscord:  {sandbox.fake.api_base_url}  (the sandbox's Discord API)\n")
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        sandbox.fake.stop()


if __name__ == "__main__":
    main()
