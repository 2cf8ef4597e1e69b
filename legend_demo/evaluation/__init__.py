"""Held-out evaluation of the follow-up generator (issue 5 §4; thesis table 5.2 ablation)."""
