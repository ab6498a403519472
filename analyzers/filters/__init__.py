"""Temporal filters for per-frame measurements (head pose, gaze).

Submodules are imported explicitly (``analyzers.filters.kalman``).
"""
