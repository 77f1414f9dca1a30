"""Pure declarations (pydantic, no Dagster): what a project's YAML means once resolved."""
