CREATE OR REPLACE FUNCTION rhip_booking_refusal(
    s booking_slots, p_tranche text, p_now timestamptz, p_role text, p_inst text,
    OUT o_code text, OUT o_at timestamptz
) LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- the rules of refusals.refuse_slot, in the same order
    IF s.status <> 'open' THEN o_code := 'slot-stopped'; RETURN; END IF;
    IF s.starts_at <= p_now THEN o_code := 'slot-past'; RETURN; END IF;
    IF p_tranche = 'public' AND s.public_release_at > p_now THEN
        o_code := 'not-released'; o_at := s.public_release_at; RETURN;
    END IF;
    IF p_tranche = 'family' THEN
        IF p_role <> 'family_doctor' THEN o_code := 'family-only'; RETURN; END IF;
        IF s.family_release_at > p_now THEN
            o_code := 'not-released'; o_at := s.family_release_at; RETURN;
        END IF;
    END IF;
    IF p_tranche = 'clinic' THEN
        IF p_role <> 'doctor' THEN o_code := 'clinic-only'; RETURN; END IF;
        IF p_inst IS DISTINCT FROM s.hospital_code THEN o_code := 'other-hospital'; RETURN; END IF;
    END IF;
    IF (p_tranche = 'public' AND s.booked_public >= s.cap_public)
        OR (p_tranche = 'family' AND s.booked_family >= s.cap_family)
        OR (p_tranche = 'clinic' AND s.booked_clinic >= s.cap_clinic) THEN
        o_code := 'slot-full';
    END IF;
END $$;
