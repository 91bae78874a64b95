"""Knowing what it does not know: in-scope scores, calibration, evidence, diagnostics."""
