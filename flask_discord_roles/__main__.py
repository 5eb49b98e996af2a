"""``python -m flask_discord_roles …``: the commands that need no app, for before there is one."""

from __future__ import annotations

import click

from flask_discord_roles._cli import generate_key_command


@click.group(help="flask-discord-roles commands that need no app (the rest are `flask discord-roles …`).")
def main() -> None:
    """The command group."""


main.add_command(generate_key_command)

if __name__ == "__main__":
    main(prog_name="python -m flask_discord_roles")
