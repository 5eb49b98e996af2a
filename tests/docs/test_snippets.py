"""Every ```python block of README.md and docs/**/*.md runs, so no example in the docs can go stale.

The rule every page is written to (docs/testing.md and the helpers' shared brief say the same):

- the blocks of one page run in order, in one shared namespace (a page reads as one session);
- the current directory is a fresh temporary directory, and the environment has
  ``DISCORD_ROLES_ENCRYPTION_KEYS`` (a fresh key) and ``DISCORD_ROLES_API_BASE_URL`` (the session's
  FakeDiscord), so an example never needs a secret of its own nor reaches real Discord;
- set-up a reader should not see goes in an HTML comment before the block it prepares,
  ``<!-- snippet-setup`` newline, code, ``-->``; it runs at that point in the same namespace, where the
  running fake is ``fake_discord`` (for creating the bot, server or member an example talks to);
- blocks in other languages (console, json, ini) are not run here: a shell recipe has a named test.

After a page, every Flask app left in its namespace is shut down (our background deliveries stopped, its
database engines disposed), so nothing a page started outlives it.

The tree scanned is this repository's, or ``DISCORD_ROLES_DOCS_ROOT`` to check another checkout's pages.
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_discord_roles import DiscordRoles
from flask_discord_roles.testing import FakeDiscord
from tests.docs.pages import documentation_pages, relative

# A fenced python block (indented fences too: a block inside a list item), or a hidden set-up comment.
STEP = re.compile(
    r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```"
    r"|^[ \t]*<!--[ \t]*snippet-setup[ \t]*\n(?P<setup>.*?)^[ \t]*-->",
    re.MULTILINE | re.DOTALL,
)

# The namespace a page runs in is a module of this name, so that code which looks its module up
# (Flask(__name__), dataclasses, pickling) finds one.
MODULE_NAME = "docs_snippet"


@dataclass(frozen=True)
class Step:
    """One piece of a page to run: a visible ```python block, or a hidden snippet-setup comment."""

    line: int  # where its code starts in the page, counted from 1
    code: str
    hidden: bool

    def describe(self) -> str:
        what = "the snippet-setup" if self.hidden else "the ```python block"
        return f"{what} starting at line {self.line}"


def page_steps(text: str) -> Iterator[Step]:
    for match in STEP.finditer(text):
        group = "setup" if match.group("setup") is not None else "code"
        line = text.count("\n", 0, match.start(group)) + 1
        yield Step(line, textwrap.dedent(match.group(group)), hidden=group == "setup")


def run_step(step: Step, page: Path, namespace: dict[str, Any]) -> None:
    """Run one step; a failure names the page, the step's line and the exception, with the page's lines."""
    # Padding the code with blank lines makes tracebacks and syntax errors point at the page's own lines.
    source = "\n" * (step.line - 1) + step.code
    try:
        exec(compile(source, str(page), "exec"), namespace)  # noqa: S102  (running the docs is the point)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a snippet may raise anything, SystemExit included
        # Without the harness's own frame: the traceback starts in the page.
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None
        shown = "".join(traceback.format_exception(type(exc), exc, frames))
        failure = f"{relative(page)}: {step.describe()} raised {type(exc).__name__}: {exc}\n\n{shown}"
    else:
        return
    pytest.fail(failure, pytrace=False)


def current_contexts() -> tuple[object, object]:
    """The pushed request and app contexts (the objects, not Flask's proxies to them), or None."""
    globals_: Any = flask.globals  # Flask types its proxies as what they stand for, not as proxies
    request = globals_.request_ctx._get_current_object() if flask.has_request_context() else None
    app = globals_.app_ctx._get_current_object() if flask.has_app_context() else None
    return request, app


def shut_down_what_the_page_left(made: list[Any], contexts: tuple[object, object]) -> None:
    """Stop what a page's apps started: contexts it pushed, our background deliveries, pooled connections."""
    while flask.has_request_context() and current_contexts()[0] is not contexts[0]:
        flask.globals.request_ctx.pop()
    while flask.has_app_context() and current_contexts()[1] is not contexts[1]:
        flask.globals.app_ctx.pop()
    for value in made:
        if isinstance(value, Flask):
            if "discord_roles" in value.extensions:
                # The extension keeps no state of its own (it is all on the app), so any instance
                # stops any app's deliveries, whether or not the page kept its own.
                DiscordRoles().shutdown(value)
            db = value.extensions.get("sqlalchemy")
            if isinstance(db, SQLAlchemy):
                with value.app_context():
                    for engine in db.engines.values():
                        engine.dispose()
        elif isinstance(value, sa.Engine):
            value.dispose()


PAGES = documentation_pages()


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_the_python_examples_of_the_page_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_discord: FakeDiscord
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_ROLES_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("DISCORD_ROLES_API_BASE_URL", fake_discord.api_base_url)
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(tmp_path / f"{MODULE_NAME}.py")  # so Flask(__name__) roots the app here
    module.__dict__["fake_discord"] = fake_discord
    monkeypatch.setitem(sys.modules, MODULE_NAME, module)
    contexts = current_contexts()
    environment = dict(os.environ)  # a page may export variables, as a reader would: none outlive it
    # Every app and engine the page made, even one a later block rebinds its name to something else.
    made: dict[int, Any] = {}
    try:
        for step in page_steps(page.read_text(encoding="utf-8")):
            try:
                run_step(step, page, module.__dict__)
            finally:
                made.update((id(v), v) for v in module.__dict__.values() if isinstance(v, Flask | sa.Engine))
    finally:
        shut_down_what_the_page_left(list(made.values()), contexts)
        os.environ.clear()
        os.environ.update(environment)


def test_the_harness_finds_the_blocks_and_the_hidden_set_up() -> None:
    text = (
        "Intro\n"
        "<!-- snippet-setup\n"
        "hidden = 1\n"
        "-->\n"
        "```python\n"
        "shown = hidden + 1\n"
        "```\n"
        "```console\n"
        "$ flask run\n"
        "```\n"
        "1. A list item\n"
        "   ```python\n"
        "   indented = shown\n"
        "   ```\n"
    )
    assert list(page_steps(text)) == [
        Step(3, "hidden = 1\n", hidden=True),
        Step(6, "shown = hidden + 1\n", hidden=False),
        Step(13, "indented = shown\n", hidden=False),
    ], "the harness must run setup comments and python blocks (indented ones too) in page order, nothing else"
