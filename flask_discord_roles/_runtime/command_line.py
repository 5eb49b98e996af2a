"""Whether ``init_app`` runs because the ``flask`` command line is loading the app to find a command.

``flask discord-roles generate-key`` is found on the app, so Flask loads the app first: an app that has no
encryption key yet would then fail to start before it could print one. Only in that moment is a
configuration error held back (see :class:`~flask_discord_roles._runtime.state.UnconfiguredApp`); a
server, a worker, ``flask run`` or ``flask shell`` still fail at start-up.
"""

from __future__ import annotations

import click
from flask.cli import FlaskGroup


def finding_a_command() -> bool:
    """True while ``flask`` loads the app to look up (or list) the command it was asked for.

    Flask's ``FlaskGroup`` loads the app in its own click context when it looks a command up; a command
    that loads the app itself (``run``, ``shell``, ``routes``) does so in the command's context.
    """
    context = click.get_current_context(silent=True)
    return context is not None and isinstance(context.command, FlaskGroup)
