"""The rules of single fields of a source declaration: names, variable names, secret-free
URLs and landings.  Kept apart from the source kinds (``sources.py``) because the
settings check (``source_declarations.py``) applies the landing rule to a variable's
value as well as to the YAML field."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from training_pipeline.spec.errors import FieldError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
ENV_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"


def env_name(field: str, value: str) -> str:
    if "://" in value or "/" in value:
        raise FieldError(
            field,
            f"{value!r} looks like a URL; secrets never go in YAML: put the URL in an "
            "environment variable and name the variable here",
            "an environment variable name such as SHOP_DB_URL",
        )
    if not re.match(ENV_NAME_PATTERN, value):
        raise FieldError(field, f"{value!r} is not an environment variable name", ENV_NAME_PATTERN)
    return value


def credential_free(field: str, value: str | None) -> str | None:
    if value is not None and urlsplit(value.replace("{data_dir}", "data")).password:
        raise FieldError(field, "holds a password; put such a URL in the environment variable")
    return value


S3_PREFIX_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[\w.=-]+)*/?$"
LANDING_ALLOWED = f"one plain folder name ({NAME_PATTERN}) or s3://bucket/prefix/"


def landing_location(text: str) -> str:
    """A landing as written: one plain folder name, or ``s3://bucket/prefix/``.

    Raises:
        ValueError: it is neither (the reason, without the allowed values).
    """
    value = text
    if value.startswith("s3://"):
        segments = value[5:].rstrip("/").split("/")
        if not re.match(S3_PREFIX_PATTERN, value) or {".", ".."} & set(segments):
            raise ValueError(f"{value!r} is not an S3 bucket and prefix")
    elif not re.match(NAME_PATTERN, value):
        raise ValueError(f"{value!r} is not one plain folder name")
    return value
