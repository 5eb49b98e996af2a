"""Claim codes for guest orders, for the host's confirmation page and email (inside an app context)::

    from flask_discord_roles import claim_code

    code = claim_code(store.id, order.id)
    # "In our Discord server, run /claim code:order-1234-7QX3M0R9KD2A to get your roles."

The buyer runs ``/claim code:…`` in the store's server; the order's roles then go to whoever typed it
(once: a second Discord account gets told the order was already claimed).
"""

from __future__ import annotations

from flask_discord_roles._core.claim_codes import ClaimCodeSecretMissing, make_claim_code
from flask_discord_roles._runtime.state import get_state

__all__ = ["ClaimCodeSecretMissing", "claim_code"]


def claim_code(store_id: object, order_id: object) -> str:
    """The order's claim code: always the same for the same order, nothing stored.

    Keyed by ``DISCORD_ROLES_CLAIM_CODE_SECRET`` (default: ``SECRET_KEY``); raises
    :class:`ClaimCodeSecretMissing` when neither is set.
    """
    secret = get_state().claim_secret
    if secret is None:
        raise ClaimCodeSecretMissing(
            "claim codes need a secret: set SECRET_KEY or DISCORD_ROLES_CLAIM_CODE_SECRET in the app's config"
        )
    return make_claim_code(secret, str(store_id), str(order_id))
