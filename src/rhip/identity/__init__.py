"""Identity (EMPI): linking records to persons."""
