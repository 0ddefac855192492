"""Plots. Functions take arrays or result tables (and an optional Axes), return a Figure, never show it."""
