"""The shipped benchmark specs (package data): mini/ (the miniature world), the paper tables, perf/ scripts."""
