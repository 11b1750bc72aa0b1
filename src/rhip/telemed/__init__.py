"""Telemedicine centres (远程医疗): consultation, imaging, ECG, lab, pathology."""
