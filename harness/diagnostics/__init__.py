"""Judging reward models inside a run: report cards and the over-optimisation monitor."""
