"""Experiments built on the engine: h-sweeps, layer-by-layer propagation, time-evolving data."""
