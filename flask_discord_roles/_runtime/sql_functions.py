"""The one PostgreSQL function we install: queueing a paid order's deliveries inside the checkout.

Why a function: a checkout pays for every statement we add to it, and on PostgreSQL most of the cost of
the set-based INSERT is parsing and planning it, again on every checkout. psycopg's automatic prepared
statements do not help there, because psycopg drops them whenever the connection rolls back, which
Flask-SQLAlchemy does at the end of nearly every request. A PL/pgSQL function keeps its plans for the
life of the database connection, so a checkout sends one short call and the INSERTs run from cached plans.

The body must do exactly what :mod:`flask_discord_roles._core.enqueue.sqlite` does on SQLite; one
table of cases (``tests/engine/test_enqueue_cases.py``) runs against both. Versions are never edited
once released: a change is a new ``ENQUEUE_ORDER_V<n>`` and a migration that installs it, so old
migrations still replay what they did.

It is created by ``db.create_all()`` (a DDL event on the deliveries table, the latest version) and by
the migrations ``dr0003`` (V1) and ``dr0012`` (V2, which also returns the Linked Roles mark, so the
checkout's statement is the bare call); ``db.drop_all()`` and ``dr0003``'s downgrade remove it. A host
still on V1 (not migrated yet) gets the mark from the statement V1 needs instead
(:mod:`flask_discord_roles._core.enqueue.postgresql` asks once per engine which one is installed).
Tables are named without a schema: they resolve through the connection's ``search_path``, like every
other statement the host runs.
"""

from __future__ import annotations

import sqlalchemy as sa

ENQUEUE_ORDER_SIGNATURE = "discord_roles_enqueue_order(text, text, text, text, text[], json, timestamptz)"
"""The function's identity, as DROP FUNCTION needs it."""

ROLE_CONNECTION = "role_connection"
"""The kind of the row that V2 and later return when the customer's Linked Roles connection must be
queued (id 0): not a row created, a mark that the store has Linked Roles on and the customer a linked
account (found in the same call as the INSERTs)."""

ENQUEUE_ORDER_V1 = """
CREATE OR REPLACE FUNCTION discord_roles_enqueue_order(
    p_store_id text,
    p_order_id text,
    p_customer_id text,
    p_discord_user_id text,
    p_package_ids text[],
    p_package_names json,
    p_now timestamptz
) RETURNS TABLE (queued_kind text, queued_id bigint, queued_due boolean)
LANGUAGE plpgsql AS $function$
DECLARE
    v_discord_user_id text := p_discord_user_id;
    v_delivery_mode text;
    v_claims_expire boolean;
    v_claim_expiry_hours integer;
    v_notifications_enabled boolean;
    v_notification_channel_id text;
BEGIN
    -- The id given at checkout wins; otherwise the account the customer linked earlier, if any.
    IF v_discord_user_id IS NULL AND p_customer_id IS NOT NULL THEN
        SELECT a.discord_user_id INTO v_discord_user_id
        FROM discord_roles_accounts AS a
        WHERE a.store_id = p_store_id AND a.customer_id = p_customer_id;
    END IF;

    -- A store that never saved settings has none: the documented defaults apply.
    SELECT s.delivery_mode, s.claims_expire, s.claim_expiry_hours, s.notifications_enabled,
           s.notification_channel_id
    INTO v_delivery_mode, v_claims_expire, v_claim_expiry_hours, v_notifications_enabled,
         v_notification_channel_id
    FROM discord_roles_settings AS s
    WHERE s.store_id = p_store_id;

    RETURN QUERY
    WITH created AS (
        INSERT INTO discord_roles_deliveries AS d (
            store_id, idempotency_key, action, status, source, guild_id, role_id, role_name,
            discord_user_id, customer_id, order_id, package_id, attempts, next_attempt_at, expires_at,
            created_at, updated_at
        )
        SELECT
            m.store_id,
            'order:' || p_order_id || ':add:' || m.package_id || ':' || m.guild_id || ':' || m.role_id,
            'add', 'pending', 'auto', m.guild_id, m.role_id, m.role_name,
            v_discord_user_id, p_customer_id, p_order_id, m.package_id, 0,
            -- Due now when Discord knows who to give it to and the store delivers without a /claim.
            CASE WHEN v_discord_user_id IS NOT NULL AND coalesce(v_delivery_mode, 'automatic') = 'automatic'
                 THEN p_now END,
            CASE WHEN coalesce(v_claims_expire, true)
                 THEN p_now + coalesce(v_claim_expiry_hours, 72) * interval '1 hour' END,
            p_now, p_now
        FROM discord_roles_role_mappings AS m
        WHERE m.store_id = p_store_id AND m.package_id = ANY (p_package_ids)
        ORDER BY m.id
        ON CONFLICT (store_id, idempotency_key) DO NOTHING
        RETURNING d.id, d.next_attempt_at IS NOT NULL AS is_due
    )
    SELECT 'delivery'::text, created.id::bigint, created.is_due FROM created;

    IF v_notifications_enabled AND v_notification_channel_id IS NOT NULL THEN
        RETURN QUERY
        WITH created AS (
            INSERT INTO discord_roles_notifications AS n (
                store_id, order_id, customer_id, package_ids, package_names, discord_user_id, channel_id,
                status, attempts, next_attempt_at, created_at
            )
            VALUES (
                p_store_id, p_order_id, p_customer_id, to_json(p_package_ids), p_package_names,
                v_discord_user_id, v_notification_channel_id, 'pending', 0, p_now, p_now
            )
            ON CONFLICT (store_id, order_id) DO NOTHING
            RETURNING n.id
        )
        SELECT 'notification'::text, created.id::bigint, true FROM created;
    END IF;
END
$function$
"""

ENQUEUE_ORDER_V2 = f"""
CREATE OR REPLACE FUNCTION discord_roles_enqueue_order(
    p_store_id text,
    p_order_id text,
    p_customer_id text,
    p_discord_user_id text,
    p_package_ids text[],
    p_package_names json,
    p_now timestamptz
) RETURNS TABLE (queued_kind text, queued_id bigint, queued_due boolean)
LANGUAGE plpgsql AS $function$
DECLARE
    v_discord_user_id text := p_discord_user_id;
    v_linked_discord_user_id text;
    v_linked boolean := false;
    v_queued_roles boolean;
    v_delivery_mode text;
    v_claims_expire boolean;
    v_claim_expiry_hours integer;
    v_notifications_enabled boolean;
    v_notification_channel_id text;
    v_linked_roles_enabled boolean;
BEGIN
    -- A store that never saved settings has none: the documented defaults apply.
    SELECT s.delivery_mode, s.claims_expire, s.claim_expiry_hours, s.notifications_enabled,
           s.notification_channel_id, s.linked_roles_enabled
    INTO v_delivery_mode, v_claims_expire, v_claim_expiry_hours, v_notifications_enabled,
         v_notification_channel_id, v_linked_roles_enabled
    FROM discord_roles_settings AS s
    WHERE s.store_id = p_store_id;

    -- The customer's linked account: it supplies the Discord id when none was given at checkout (the
    -- given id wins), and with Linked Roles on it means their role connection must be queued.
    IF p_customer_id IS NOT NULL AND (v_discord_user_id IS NULL OR v_linked_roles_enabled) THEN
        SELECT a.discord_user_id INTO v_linked_discord_user_id
        FROM discord_roles_accounts AS a
        WHERE a.store_id = p_store_id AND a.customer_id = p_customer_id;
        v_linked := FOUND;
        v_discord_user_id := coalesce(v_discord_user_id, v_linked_discord_user_id);
    END IF;

    RETURN QUERY
    WITH created AS (
        INSERT INTO discord_roles_deliveries AS d (
            store_id, idempotency_key, action, status, source, guild_id, role_id, role_name,
            discord_user_id, customer_id, order_id, package_id, attempts, next_attempt_at, expires_at,
            created_at, updated_at
        )
        SELECT
            m.store_id,
            'order:' || p_order_id || ':add:' || m.package_id || ':' || m.guild_id || ':' || m.role_id,
            'add', 'pending', 'auto', m.guild_id, m.role_id, m.role_name,
            v_discord_user_id, p_customer_id, p_order_id, m.package_id, 0,
            -- Due now when Discord knows who to give it to and the store delivers without a /claim.
            CASE WHEN v_discord_user_id IS NOT NULL AND coalesce(v_delivery_mode, 'automatic') = 'automatic'
                 THEN p_now END,
            CASE WHEN coalesce(v_claims_expire, true)
                 THEN p_now + coalesce(v_claim_expiry_hours, 72) * interval '1 hour' END,
            p_now, p_now
        FROM discord_roles_role_mappings AS m
        WHERE m.store_id = p_store_id AND m.package_id = ANY (p_package_ids)
        ORDER BY m.id
        ON CONFLICT (store_id, idempotency_key) DO NOTHING
        RETURNING d.id, d.next_attempt_at IS NOT NULL AS is_due
    )
    SELECT 'delivery'::text, created.id::bigint, created.is_due FROM created;
    v_queued_roles := FOUND;

    IF v_notifications_enabled AND v_notification_channel_id IS NOT NULL THEN
        RETURN QUERY
        WITH created AS (
            INSERT INTO discord_roles_notifications AS n (
                store_id, order_id, customer_id, package_ids, package_names, discord_user_id, channel_id,
                status, attempts, next_attempt_at, created_at
            )
            VALUES (
                p_store_id, p_order_id, p_customer_id, to_json(p_package_ids), p_package_names,
                v_discord_user_id, v_notification_channel_id, 'pending', 0, p_now, p_now
            )
            ON CONFLICT (store_id, order_id) DO NOTHING
            RETURNING n.id
        )
        SELECT 'notification'::text, created.id::bigint, true FROM created;
    END IF;

    -- The Linked Roles mark (id 0): an order that queued no role changes none of the customer's values.
    IF v_queued_roles AND v_linked_roles_enabled AND v_linked THEN
        RETURN QUERY SELECT '{ROLE_CONNECTION}'::text, 0::bigint, true;
    END IF;
END
$function$
"""  # noqa: S608  (the one value formatted in is our constant ROLE_CONNECTION)

ENQUEUE_ORDER_LATEST = ENQUEUE_ORDER_V2
"""What ``db.create_all()`` installs; the migration ``dr0012`` installs the same."""

ENQUEUE_ORDER_MARKS_LINKED_ROLES = (
    # S608: only our constants are formatted in.
    f"SELECT position('{ROLE_CONNECTION}' in p.prosrc) > 0 FROM pg_proc AS p"  # noqa: S608
    f" WHERE p.oid = to_regprocedure('{ENQUEUE_ORDER_SIGNATURE}')"
)
"""True when the installed function is V2 or later (it returns the Linked Roles mark itself), false for
V1 or none; resolved through the connection's ``search_path`` like the call."""

DROP_ENQUEUE_ORDER = f"DROP FUNCTION IF EXISTS {ENQUEUE_ORDER_SIGNATURE}"


def install_with(deliveries: sa.Table) -> None:
    """Create the function after ``deliveries`` is created on PostgreSQL, and drop it before it is dropped."""
    create = sa.DDL(ENQUEUE_ORDER_LATEST)  # type: ignore[no-untyped-call]  # DDL's __init__ has no hints
    drop = sa.DDL(DROP_ENQUEUE_ORDER)  # type: ignore[no-untyped-call]
    sa.event.listen(deliveries, "after_create", create.execute_if(dialect="postgresql"))
    sa.event.listen(deliveries, "before_drop", drop.execute_if(dialect="postgresql"))
