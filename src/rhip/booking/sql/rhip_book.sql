CREATE OR REPLACE FUNCTION rhip_book(p_slot_id bigint, p_pid text, p_tranche text, p_key text, p_now timestamptz,
    p_role text, p_inst text, p_subject text, p_person_name text, p_channel text,
    p_referral_id bigint, p_actor_institution text,
    p_limit_dept integer, p_limit_day integer, p_limit_week integer, p_prepay integer) RETURNS TABLE (o_code text, o_at timestamptz, o_n integer, o_id bigint, o_schedule_id bigint,
    o_hospital_code varchar, o_department_code varchar, o_service_date date,
    o_starts_at timestamptz, o_ends_at timestamptz, o_status varchar, o_hold_expires_at timestamptz) LANGUAGE plpgsql VOLATILE AS $$
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
