"""Data-quality monitoring (质控): monthly data-collection figures and problem lists."""
