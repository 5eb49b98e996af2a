"""Queueing a paid order: the statements a checkout runs for us, one implementation per database.

A paid order's deliveries are the store's role mappings for its packages, joined with the store's
settings (delivery mode, claim expiry) and the customer's linked Discord account. Letting the database
do that join inside the INSERT means a checkout costs us one call with a handful of scalar parameters,
instead of a SELECT, rows built in Python and a multi-row INSERT.

- PostgreSQL (:mod:`.postgresql`): one call to ``discord_roles_enqueue_order``
  (:mod:`flask_discord_roles._runtime.sql_functions`), which runs the INSERTs from plans it keeps for the
  life of the connection.
- SQLite (:mod:`.sqlite`): an ``INSERT … SELECT`` for the deliveries and another for the notification.

Both take the values of :func:`.statements.order_parameters` and return rows of (kind, id, due); one
table of cases (``tests/engine/test_enqueue_cases.py``) holds them to the same rule. These are the
databases flask-discord-roles supports (:mod:`flask_discord_roles._runtime.dialects`): any other is
refused, naming it, the first time we queue.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Dialect

from flask_discord_roles._core.enqueue.postgresql import function_call
from flask_discord_roles._core.enqueue.sqlite import two_inserts
from flask_discord_roles._core.enqueue.statements import OrderStatements
from flask_discord_roles._runtime.dialects import unsupported
from flask_discord_roles._runtime.models import Models


@lru_cache(maxsize=64)
def order_statements(models: Models, dialect: Dialect) -> OrderStatements:
    """The statements for ``models`` on ``dialect``, built once: building costs more than running them."""
    if dialect.name == "postgresql":
        return function_call(dialect)
    if dialect.name == "sqlite":
        return two_inserts(models, dialect)
    raise unsupported(dialect.name)
