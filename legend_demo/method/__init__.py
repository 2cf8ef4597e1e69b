"""The method (thesis chapters 4–5) as pure functions and small records, below every engine, model and interface."""
