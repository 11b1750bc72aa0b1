"""Booking (预约挂号): schedules, slots, appointments, referrals."""
