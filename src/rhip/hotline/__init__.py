"""The 12320 hotline, work orders and the assistant 宁宁."""
