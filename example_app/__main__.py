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
    print(f"\n  Storefront:   http://{host}:{port}/")
    print(f"  FakeDiscord:  {sandbox.fake.api_base_url}  (the sandbox's Discord API)\n")
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        sandbox.fake.stop()


if __name__ == "__main__":
    main()
