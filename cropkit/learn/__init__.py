"""Decisions -> examples -> a fitted proposer -> suggestions, and the held-out comparison."""
