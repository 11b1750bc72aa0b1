"""Registry: institutions, districts, departments, channels, code systems and the dataset catalogue."""
