"""Booking: many bookings in one call and one transaction (rhip_book_many), for group commit.

The steps of rhip_book after the person's lock move into rhip_book_locked (the suspension read from
the lock row is passed in); rhip_book is now the lock plus that function, so the single booking does
exactly what it did. rhip_book_many takes arrays (one element per booking) and runs in one
transaction: first every person's lock row in person-id order, then each booking in slot-id order by
rhip_book_locked — so every batch takes its locks in one global order (persons, then slots) and two
batches never wait on each other in a cycle. Each booking is still decided by THE one conditional
UPDATE; a person's later bookings in the same batch see the earlier ones (same transaction), and those
of other transactions wait on the person's lock row. It answers one row per booking, in input order:
the code, the refusal's details, for `slot-full` the idempotency keys of the slot's bookings (for the
sold-out memory), and for `booked` and `replay` the appointment's columns as stored. SQLite: nothing.

Revision ID: 0013_booking_book_many
Revises: 0012_booking_book_fn
Create Date: 2026-11-22
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0013_booking_book_many"
down_revision = "0012_booking_book_fn"
branch_labels = None
depends_on = None

ARGS = """p_slot_id bigint, p_pid text, p_tranche text, p_key text, p_now timestamptz,
    p_role text, p_inst text, p_subject text, p_person_name text, p_channel text,
    p_referral_id bigint, p_actor_institution text,
    p_limit_dept integer, p_limit_day integer, p_limit_week integer, p_prepay integer"""
ARG_TYPES = (
    "bigint, text, text, text, timestamptz, text, text, text, text, text, bigint, text, "
    "integer, integer, integer, integer"
)
RESULT = """o_code text, o_at timestamptz, o_n integer, o_id bigint, o_schedule_id bigint,
    o_hospital_code varchar, o_department_code varchar, o_service_date date,
    o_starts_at timestamptz, o_ends_at timestamptz, o_status varchar, o_hold_expires_at timestamptz"""

LOCKED = f"""
CREATE OR REPLACE FUNCTION rhip_book_locked(
    {ARGS}, p_susp timestamptz
) RETURNS TABLE ({RESULT}) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    s booking_slots;
    ref record;
    found_id bigint;
    found_person varchar;
    found_slot bigint;
    lim_dept integer;
    lim_day integer;
    lim_week integer;
    prepay integer;
    n_dept integer;
    n_day integer;
    n_week integer;
    days date[];
    st varchar;
    hold timestamptz;
    taken bigint;
    new_id bigint;
BEGIN
    -- 1. (the caller holds the person's lock row; p_susp is the suspension recorded on it)
    SELECT * INTO s FROM booking_slots WHERE id = p_slot_id;
    IF NOT FOUND THEN
        o_code := 'no-slot'; RETURN NEXT; RETURN;
    END IF;
    -- 2. the slot's rules; a refused retry of a booking that took the last place finds that booking
    SELECT * INTO ref FROM rhip_booking_refusal(s, p_tranche, p_now, p_role, p_inst);
    IF p_key IS NOT NULL THEN
        SELECT id, person_id, slot_id INTO found_id, found_person, found_slot
            FROM booking_appointments WHERE idempotency_key = p_key;
        IF found_id IS NOT NULL THEN
            IF found_person <> p_pid OR found_slot <> p_slot_id THEN
                o_code := 'idempotency-key-reused';
            ELSE
                o_code := 'replay'; o_id := found_id;
            END IF;
            RETURN NEXT; RETURN;
        END IF;
    END IF;
    IF ref.o_code IS NOT NULL THEN
        o_code := ref.o_code; o_at := ref.o_at; RETURN NEXT; RETURN;
    END IF;
    -- 3. the hospital's rules over the platform's over the defaults
    SELECT COALESCE(h.limit_dept_day, p.limit_dept_day, p_limit_dept),
           COALESCE(h.limit_day, p.limit_day, p_limit_day),
           COALESCE(h.limit_week, p.limit_week, p_limit_week),
           COALESCE(h.prepay_minutes, p.prepay_minutes, p_prepay)
        INTO lim_dept, lim_day, lim_week, prepay
        FROM (SELECT 1) AS one
        LEFT JOIN booking_rules p ON p.hospital_code = '*'
        LEFT JOIN booking_rules h ON h.hospital_code = s.hospital_code;
    IF p_tranche = 'family' AND NOT EXISTS (
        SELECT 1 FROM booking_signings WHERE person_id = p_pid AND institution_code = p_inst
    ) THEN
        o_code := 'not-signed'; RETURN NEXT; RETURN;
    END IF;
    IF p_susp IS NOT NULL AND p_susp > p_now THEN
        o_code := 'suspended'; o_at := p_susp; RETURN NEXT; RETURN;
    END IF;
    -- 4. the limits, over the person's bookings that count within six days either side (one read)
    SELECT count(*) FILTER (WHERE a.service_date = s.service_date AND a.hospital_code = s.hospital_code
                              AND a.department_code = s.department_code),
           count(*) FILTER (WHERE a.service_date = s.service_date),
           array_agg(a.service_date)
        INTO n_dept, n_day, days
        FROM booking_appointments a
        WHERE a.person_id = p_pid AND a.status IN ('held', 'booked', 'checked_in', 'no_show')
          AND a.service_date BETWEEN s.service_date - 6 AND s.service_date + 6;
    IF n_dept >= lim_dept THEN o_code := 'limit-department'; o_n := lim_dept; RETURN NEXT; RETURN; END IF;
    IF n_day >= lim_day THEN o_code := 'limit-daily'; o_n := lim_day; RETURN NEXT; RETURN; END IF;
    -- the busiest of the 7-day windows holding the day; no window can reach the limit with fewer
    -- bookings than it in all 13 days (most people booking have none), so it is counted only then
    n_week := 0;
    IF COALESCE(cardinality(days), 0) >= lim_week THEN
        SELECT COALESCE(max(w.c), 0) INTO n_week FROM (
            SELECT count(*) AS c FROM generate_series(0, 6) AS k, unnest(days) AS d
            WHERE d BETWEEN s.service_date - k AND s.service_date - k + 6 GROUP BY k) AS w;
    END IF;
    IF n_week >= lim_week THEN o_code := 'limit-weekly'; o_n := lim_week; RETURN NEXT; RETURN; END IF;
    IF prepay > 0 THEN
        st := 'held'; hold := p_now + make_interval(mins => prepay);
    ELSE
        st := 'booked'; hold := NULL;
    END IF;
    -- 5. THE one conditional write that takes the place: it cannot oversell under any concurrency
    UPDATE booking_slots SET
        booked_public = booked_public + (p_tranche = 'public')::int,
        booked_family = booked_family + (p_tranche = 'family')::int,
        booked_clinic = booked_clinic + (p_tranche = 'clinic')::int,
        updated_at = p_now
    WHERE id = p_slot_id AND status = 'open' AND starts_at > p_now
      AND CASE p_tranche
            WHEN 'public' THEN booked_public < cap_public AND public_release_at <= p_now
            WHEN 'family' THEN booked_family < cap_family AND family_release_at <= p_now
            ELSE booked_clinic < cap_clinic
          END
    RETURNING id INTO taken;
    IF taken IS NULL THEN  -- gone meanwhile: say which rule refuses it now
        SELECT * INTO s FROM booking_slots WHERE id = p_slot_id;
        SELECT * INTO ref FROM rhip_booking_refusal(s, p_tranche, p_now, p_role, p_inst);
        o_code := COALESCE(ref.o_code, 'slot-full'); o_at := ref.o_at; RETURN NEXT; RETURN;
    END IF;
    INSERT INTO booking_appointments (
        slot_id, schedule_id, hospital_code, department_code, service_date, starts_at, ends_at,
        person_id, person_name, channel, tranche, status, idempotency_key, referral_id,
        hold_expires_at, created_by, created_role, actor_institution, created_at, updated_at
    ) VALUES (
        p_slot_id, s.schedule_id, s.hospital_code, s.department_code, s.service_date, s.starts_at,
        s.ends_at, p_pid, p_person_name, p_channel, p_tranche, st, p_key, p_referral_id,
        hold, p_subject, p_role, p_actor_institution, p_now, p_now
    ) ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO new_id;
    IF new_id IS NULL THEN  -- the same key won a race from another person's request: give it back
        UPDATE booking_slots SET
            booked_public = booked_public - (p_tranche = 'public')::int,
            booked_family = booked_family - (p_tranche = 'family')::int,
            booked_clinic = booked_clinic - (p_tranche = 'clinic')::int
        WHERE id = p_slot_id;
        o_code := 'idempotency-key-reused'; RETURN NEXT; RETURN;
    END IF;
    o_code := 'booked'; o_id := new_id; o_schedule_id := s.schedule_id;
    o_hospital_code := s.hospital_code; o_department_code := s.department_code;
    o_service_date := s.service_date; o_starts_at := s.starts_at; o_ends_at := s.ends_at;
    o_status := st; o_hold_expires_at := hold;
    RETURN NEXT;
END $$;
"""

BOOK = f"""
CREATE OR REPLACE FUNCTION rhip_book({ARGS}) RETURNS TABLE ({RESULT}) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    susp timestamptz;
BEGIN
    -- the person's lock row: all bookings of one person serialise here; it carries the suspension
    INSERT INTO booking_person_locks AS l (person_id, bumps) VALUES (p_pid, 1)
        ON CONFLICT (person_id) DO UPDATE SET bumps = l.bumps + 1
        RETURNING l.suspended_until INTO susp;
    RETURN QUERY SELECT * FROM rhip_book_locked(
        p_slot_id, p_pid, p_tranche, p_key, p_now, p_role, p_inst, p_subject, p_person_name, p_channel,
        p_referral_id, p_actor_institution, p_limit_dept, p_limit_day, p_limit_week, p_prepay, susp);
END $$;
"""

MANY_ARGS = (
    "bigint[], text[], text[], text[], timestamptz[], text[], text[], text[], text[], text[], bigint[], "
    "text[], integer, integer, integer, integer"
)

MANY = """
CREATE OR REPLACE FUNCTION rhip_book_many(
    p_slot_ids bigint[], p_pids text[], p_tranches text[], p_keys text[], p_nows timestamptz[],
    p_roles text[], p_insts text[], p_subjects text[], p_person_names text[], p_channels text[],
    p_referral_ids bigint[], p_actor_institutions text[],
    p_limit_dept integer, p_limit_day integer, p_limit_week integer, p_prepay integer
) RETURNS TABLE (
    o_code text, o_at timestamptz, o_n integer, o_keys text[],
    o_id bigint, o_slot_id bigint, o_schedule_id bigint, o_hospital_code varchar,
    o_department_code varchar, o_service_date date, o_starts_at timestamptz, o_ends_at timestamptz,
    o_person_id varchar, o_person_name varchar, o_channel varchar, o_tranche varchar,
    o_status varchar, o_hold_expires_at timestamptz, o_checked_in_at timestamptz,
    o_cancel_reason varchar, o_referral_id bigint, o_created_at timestamptz
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n integer := cardinality(p_slot_ids);
    lk_pids text[];
    lk_susp timestamptz[];
    codes text[] := array_fill(NULL::text, ARRAY[n]);
    ats timestamptz[] := array_fill(NULL::timestamptz, ARRAY[n]);
    ns integer[] := array_fill(NULL::integer, ARRAY[n]);
    ids bigint[] := array_fill(NULL::bigint, ARRAY[n]);
    codes_slots text[];
    i integer;
    r record;
BEGIN
    -- 1. every person's lock row, in person-id order, before any slot is touched
    WITH wanted AS (
        SELECT pid, count(*)::integer AS k FROM unnest(p_pids) AS pid GROUP BY pid
    ), locked AS (
        INSERT INTO booking_person_locks AS l (person_id, bumps)
        SELECT pid, k FROM wanted ORDER BY pid
        ON CONFLICT (person_id) DO UPDATE SET bumps = l.bumps + EXCLUDED.bumps
        RETURNING l.person_id, l.suspended_until
    )
    SELECT array_agg(person_id), array_agg(suspended_until) INTO lk_pids, lk_susp FROM locked;
    -- 2. each booking in slot-id order (the slots' row locks in one order), as rhip_book does it
    FOR i IN SELECT g FROM generate_subscripts(p_slot_ids, 1) AS g ORDER BY p_slot_ids[g], g LOOP
        SELECT * INTO r FROM rhip_book_locked(
            p_slot_ids[i], p_pids[i], p_tranches[i], p_keys[i], p_nows[i], p_roles[i], p_insts[i],
            p_subjects[i], p_person_names[i], p_channels[i], p_referral_ids[i], p_actor_institutions[i],
            p_limit_dept, p_limit_day, p_limit_week, p_prepay,
            lk_susp[array_position(lk_pids, p_pids[i])]);
        codes[i] := r.o_code; ats[i] := r.o_at; ns[i] := r.o_n; ids[i] := r.o_id;
    END LOOP;
    codes_slots := ARRAY(SELECT c || ' ' || s FROM unnest(codes, p_slot_ids) AS y(c, s));
    -- 3. the answers in input order: the appointment as stored (booked or replayed), or the refusal
    RETURN QUERY
        SELECT x.code, x.at, x.n,
               -- once per full slot in the batch, on its first refusal
               CASE WHEN x.code = 'slot-full' AND x.idx = array_position(codes_slots, 'slot-full ' || x.slot)
               THEN ARRAY(SELECT k.idempotency_key::text FROM booking_appointments k
                          WHERE k.slot_id = x.slot AND k.idempotency_key IS NOT NULL) END,
               a.id, a.slot_id, a.schedule_id, a.hospital_code, a.department_code, a.service_date,
               a.starts_at, a.ends_at, a.person_id, a.person_name, a.channel, a.tranche, a.status,
               a.hold_expires_at, a.checked_in_at, a.cancel_reason, a.referral_id, a.created_at
        FROM unnest(codes, ats, ns, ids, p_slot_ids) WITH ORDINALITY AS x(code, at, n, id, slot, idx)
        LEFT JOIN booking_appointments a ON a.id = x.id
        ORDER BY x.idx;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(LOCKED)
    op.execute(BOOK)
    op.execute(MANY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS rhip_book_many({MANY_ARGS})")
    # rhip_book as 0012 made it (its own body again), before the function it now calls goes
    spec = importlib.util.spec_from_file_location(
        "_booking_0012", Path(__file__).with_name("0012_booking_book_fn.py")
    )
    assert spec is not None and spec.loader is not None
    previous = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(previous)
    op.execute(previous.BOOK)
    op.execute(f"DROP FUNCTION IF EXISTS rhip_book_locked({ARG_TYPES}, timestamptz)")
