"""Values that may hold a secret, made fit for logs, metadata and error messages: the one
place a password or a webhook token is hidden."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def password_masked(text: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``, parseable or not."""
    return re.sub(r"([^/:@]*):[^/@]*@", r"\1:***@", text)


def mask_url(text: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret`` → ``https://hooks.slack.com/***``.

    A webhook URL's path is its token: only the scheme and host are kept, never the
    user:password part.
    """
    parts = urlsplit(text)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme or '?'}://{host or '?'}/***"
