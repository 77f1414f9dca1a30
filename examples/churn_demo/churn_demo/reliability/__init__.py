"""Fault injection and after-the-fact accounting: what `churn-demo chaos` and the crash
tests use to break the pipeline on purpose and prove that nothing was lost."""

DEMO_MODEL = "churn"
"""The model the demo's faults are aimed at (examples/defs/churn/model/defs.yaml)."""
