"""``python -m example_app``: the storefront and its Discord sandbox, on one machine, offline."""

from __future__ import annotations

import os
import signal
import sys

from .demo import CUSTOMERS, PASSWORD, start_demo


def main() -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("DEMO_RESET") != "1":
        sys.exit(
            "The demo empties its database on every start. To let it empty DATABASE_URL, "
            "set DEMO_RESET=1 as well."
        )
    # Ctrl+C stops the demo even when it was started from a background job or a script, which start it
    # with SIGINT ignored (Python then keeps it ignored, and the demo would never stop).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    demo = start_demo(host=host, port=port)
    try:  # from here on, Ctrl+C stops the demo cleanly, even while it prints where it is
        fake = demo.sandbox.fake
        accounts = ", ".join(email for email, _, _ in CUSTOMERS)
        print(
            f"""
  Storefront:   {demo.url}/
  Dashboard:    {demo.url}/dashboard/   (sign in as owner@example.com)
  Accounts:     {accounts}   password: {PASSWORD}
  Sandbox:      {demo.guild_page}
                the demo server's roles and members, live; act as a Discord user and run /claim there
  FakeDiscord:  {fake.api_base_url}   (the storefront's Discord API)

  The database is rebuilt on every start, because FakeDiscord starts empty. Ctrl+C stops both.
""",
            flush=True,
        )
        demo.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
