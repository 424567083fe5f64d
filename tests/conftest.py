"""Shared pytest configuration: plots never need a display."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
