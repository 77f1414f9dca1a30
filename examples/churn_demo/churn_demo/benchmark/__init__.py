"""The performance benchmark behind ``scripts/bench.py``: messy order files in the
project's formats, our path (ingestion + dbt) against plain reference scripts."""
