"""Statistics that decide: paired differences of table cells (paired), intervals with training
variance for trained rows (twolevel), which cells a check compares (matching), family-wise control
(multiple), the one-sided regression gate (gate) and registered claims (claims)."""
