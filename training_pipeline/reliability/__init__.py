"""Fault injection and after-the-fact accounting: what scripts/chaos.py and the crash
tests use to break the pipeline on purpose and prove that nothing was lost."""
