"""Maternal and child health registry (妇幼保健)."""
