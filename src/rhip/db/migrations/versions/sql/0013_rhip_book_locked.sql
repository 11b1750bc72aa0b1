CREATE OR REPLACE FUNCTION rhip_book_locked(
    p_slot_id bigint, p_pid text, p_tranche text, p_key text, p_now timestamptz,
    p_role text, p_inst text, p_subject text, p_person_name text, p_channel text,
    p_referral_id bigint, p_actor_institution text,
    p_limit_dept integer, p_limit_day integer, p_limit_week integer, p_prepay integer, p_susp timestamptz
) RETURNS TABLE (o_code text, o_at timestamptz, o_n integer, o_id bigint, o_schedule_id bigint,
    o_hospital_code varchar, o_department_code varchar, o_service_date date,
    o_starts_at timestamptz, o_ends_at timestamptz, o_status varchar, o_hold_expires_at timestamptz) LANGUAGE plpgsql VOLATILE AS $$
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
