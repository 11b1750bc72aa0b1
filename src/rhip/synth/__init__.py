"""The synthetic city: residents, a month of uploads calibrated to the bulletins, and a ground truth."""
