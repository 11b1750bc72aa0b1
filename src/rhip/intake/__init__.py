"""Intake (数据采集): uploads from institutions, validation, de-duplication, receipts."""
