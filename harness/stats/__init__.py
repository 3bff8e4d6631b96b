"""Statistics that decide: paired differences of table cells and the one-sided regression gate."""
