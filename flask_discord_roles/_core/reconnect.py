"""Our own database work survives one connection the server closed (a restart, a failover, an idle
timeout), without asking hosts to configure their engine's pool for us.

SQLAlchemy notices a closed connection on the first statement sent over it: it invalidates that
connection and every other one the pool opened before, and raises with ``connection_invalidated`` set.
A unit of work decorated here is then run once more, on a fresh connection. That is safe because the
failed run's transaction never committed (at worst it committed just as the connection dropped, and the
second run finds its work done: every unit here is guarded by its lease or its WHERE clause). Decorate
only units that do nothing but database work, so a second run repeats no call to Discord.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

logger = logging.getLogger("flask_discord_roles.database")

P = ParamSpec("P")
T = TypeVar("T")


def survives_stale_connection(work: Callable[P, T]) -> Callable[P, T]:
    """Run ``work`` once more when it failed because its pooled connection had been closed."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            logger.warning(
                "the database had closed a pooled connection; running %s again on a new one",
                work.__qualname__,
            )
            return work(*args, **kwargs)

    return run
