"""The FHIR R4 facade: mapping between domain objects and FHIR resources."""
