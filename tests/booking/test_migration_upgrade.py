"""Upgrading a booking database that already holds schedules, slots and appointments keeps them all
(SQLite's batch mode must not copy and drop a table that others reference: foreign keys are on)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from rhip.db.engine import make_engine, upgrade

NOW = "2025-03-03 00:00:00.000000"


def test_upgrade_keeps_booked_places_on_a_filled_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010_booking")
    engine = make_engine(url)  # the application's engine: foreign keys ON, as in production
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO booking_schedules (id, hospital_code, department_code, department_name, "
                "doctor_name, doctor_title, service_type, service_date, session, starts_at, ends_at, "
                "slot_minutes, capacity_per_slot, public_release_at, family_release_at, status, created_by, "
                "created_at) VALUES (1, 'H1', '03', '内科', '王医生', '主任医师', 'general', '2025-03-10', "
                "'am', :t, :t, 30, 2, :t, :t, 'active', 'test', :t)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO booking_slots (id, schedule_id, hospital_code, department_code, service_date, "
                "starts_at, ends_at, status, capacity, cap_public, cap_family, cap_clinic, booked_public, "
                "booked_family, booked_clinic, public_release_at, family_release_at, reflowed, updated_at) "
                "VALUES (1, 1, 'H1', '03', '2025-03-10', :t, :t, 'free', 2, 2, 0, 0, 1, 0, 0, :t, :t, 0, :t)"
            ),
            {"t": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO booking_appointments (id, slot_id, schedule_id, hospital_code, department_code, "
                "service_date, starts_at, ends_at, person_id, channel, tranche, status, created_by, "
                "created_role, created_at, updated_at) VALUES (1, 1, 1, 'H1', '03', '2025-03-10', :t, :t, "
                "'11010519491231002X', 'web', 'public', 'booked', 'test', 'resident', :t, :t)"
            ),
            {"t": NOW},
        )
    engine.dispose()

    upgrade(url)  # every later revision, on a database with rows that reference booking_slots

    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM booking_appointments")).scalar_one() == 1
        slot = conn.execute(text("SELECT booked_public, clinic_reflowed FROM booking_slots")).one()
        assert tuple(slot) == (1, 0)
        assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
    engine.dispose()
