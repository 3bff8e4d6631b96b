"""The artifact graph and its evaluation: nodes and ops, the builder methods use, the evaluator, plans, costs and estimates."""
