CREATE OR REPLACE FUNCTION rhip_booking_places_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rhip_booking_places', NEW.id::text);
    RETURN NULL;
END $$;
