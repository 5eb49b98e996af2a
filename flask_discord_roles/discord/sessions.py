"""What the REST client and the OAuth client share about their ``requests.Session``: who closes it."""

from __future__ import annotations

from typing import Self

import requests

__all__ = ["SessionOwner"]


class SessionOwner:
    """Closes its session on :meth:`close` or at the end of a ``with`` block, if it made that session.

    A session the caller passed in is the caller's to close: subclasses set ``_session`` and
    ``_owns_session`` (True only for a session they made).
    """

    _session: requests.Session
    _owns_session: bool

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of the session this client created (a passed-in one is left open)."""
        if self._owns_session:
            self._session.close()
