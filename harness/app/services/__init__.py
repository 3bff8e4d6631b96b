"""One function per user action (run, check, report, baseline, plan, validate, ...): the CLI and the Python API both call these."""
