"""The synthetic city: residents, institutions' upload files for a month, calibrated to the bulletins, and a ground truth."""
