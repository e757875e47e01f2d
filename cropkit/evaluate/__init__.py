"""Held-out reports and every figure."""
