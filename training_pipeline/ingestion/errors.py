"""The one error a delivered file can earn: it is quarantined with this message as reason."""


class FileRejected(Exception):
    """A delivered file that cannot be loaded as it is; the message says why.

    ``rows`` is the number of records the file holds when it could still be counted (a
    file with one malformed row), so the ledger knows how many rows went to quarantine.
    """

    def __init__(self, reason: str, rows: int | None = None) -> None:
        super().__init__(reason)
        self.rows = rows
