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
        LEFT JOIN LATERAL (SELECT * FROM booking_appointments b WHERE b.id = x.id OFFSET 0) AS a ON true
        ORDER BY x.idx;
END $$;
