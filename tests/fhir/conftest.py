"""FHIR tests reuse the intake fixtures."""

from tests.intake.conftest import inst, inst2  # noqa: F401
