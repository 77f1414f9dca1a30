"""How the demo's source systems spell true values: messy on purpose, as docs/sources.md lists.

The simulation decides what is true (an age of 25, an order completed at a UTC instant);
these functions decide how a source system happens to write it down. Every variant in
the data contract is produced here and nowhere else, so the contract and the generator
can be compared in one place. Each function takes a ``random.Random`` (seeded per day by
the caller) so that rendering never disturbs the simulation's own random stream.
"""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone

FIRST_NAMES = (
    "Ava", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Mia", "Elias", "Sofia", "Jonas",
    "Hannah", "Leon", "Chloé", "Mateo", "Zoë", "Finn", "Lena", "Hugo", "Inès", "Daan",
    "Sophie", "Jack", "Amelia", "Oliver", "Lucía", "Pablo", "Emily", "James", "Léa", "Max",
    "Grace", "Henry", "Fenna", "Sem", "Isabella", "Ethan", "Marie", "Paul", "Nora", "José",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Müller", "Schmidt", "García", "Martínez", "Dubois", "Martin",
    "de Vries", "Jansen", "Brown", "Taylor", "Wilson", "Fischer", "Weber", "Bernard",
    "López", "Sánchez", "Bakker", "Visser", "Davies", "Evans", "Moreau", "Laurent",
    "Fernández", "Meyer", "Wagner", "Thomas", "Clarke", "Nguyen",
)  # fmt: skip
EMAIL_DOMAINS = (
    "gmail.com", "yahoo.com", "outlook.com", "example.com", "web.de", "orange.fr",
    "proton.me", "hotmail.co.uk",
)  # fmt: skip

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

COUNTRY_VARIANTS: dict[str, tuple[str, ...]] = {
    "US": ("US", "usa", "United States", " u.s. "),
    "DE": ("DE", "Germany", "deutschland"),
    "GB": ("GB", "UK", "United Kingdom"),
    "FR": ("FR", "France"),
    "ES": ("ES", "Spain", "españa"),
    "NL": ("NL", "Netherlands", "holland"),
}
SEGMENT_VARIANTS: dict[str, tuple[str, ...]] = {
    "consumer": ("consumer", "Consumer "),
    "smb": ("SMB", "smb"),
    "enterprise": ("enterprise", "ENT"),
}
ORDER_STATUS_VARIANTS: dict[str, tuple[str, ...]] = {
    "completed": ("completed", "Completed", "COMPLETE", "done"),
    "shipped": ("shipped", "Shipped "),
    "cancelled": ("cancelled", "canceled", "CANCELLED"),
    "returned": ("returned",),
    "refunded": ("refunded",),
    "pending": ("placed", "pending", "new"),
}
TICKET_STATUS_VARIANTS: dict[str, tuple[str, ...]] = {
    "open": ("open", "Open", "OPEN"),
    "pending": ("pending", "waiting"),
    "resolved": ("resolved", "solved"),
    "closed": ("closed", "Closed "),
}
CHANNEL_VARIANTS: dict[str, tuple[str, ...]] = {
    "email": ("email", "Email", "EMAIL"),
    "phone": ("phone", "Phone", "PHONE"),
    "chat": ("chat", "Chat", "CHAT"),
}
TICKET_SUBJECTS = (
    "Where is my order {order}?",
    "Package arrived damaged",
    "Wrong item received",
    "Refund not received yet",
    "Cannot log in to my account",
    "Question about invoice {order}",
    "Change delivery address",
    "Discount code does not work",
    "Item missing from order {order}",
    "Please update my billing details",
)


def _pick(rnd: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names, weights = zip(*weighted, strict=True)
    return rnd.choices(names, weights=weights)[0]


def _variant(rnd: random.Random, variants: tuple[str, ...], first_weight: float) -> str:
    """The first (canonical) variant with probability ``first_weight``, else any other."""
    if len(variants) == 1 or rnd.random() < first_weight:
        return variants[0]
    return rnd.choice(variants[1:])


def number_in_words(n: int, separator: str = "-") -> str:
    """English words for 0 ≤ n < 100, e.g. ``twenty-five`` (ages are never older)."""
    if not 0 <= n < 100:
        raise ValueError(f"only 0-99 can be spelled, got {n}")
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}{separator}{_ONES[ones]}"


_AGE_STYLES = (
    ("plain", 0.55), ("hyphen_words", 0.05), ("spaced_words", 0.05), ("prefixed", 0.07),
    ("yrs", 0.07), ("years", 0.07), ("blank", 0.07), ("impossible", 0.07),
)  # fmt: skip


def render_age(rnd: random.Random, age: int) -> str:
    style = _pick(rnd, _AGE_STYLES)
    if style == "hyphen_words":
        return number_in_words(age, "-")
    if style == "spaced_words":
        return number_in_words(age, " ")
    if style == "prefixed":
        return f"age: {age}"
    if style == "yrs":
        return f"{age} yrs"
    if style == "years":
        return f"{age} years"
    if style == "blank":
        return rnd.choice(("", " "))
    if style == "impossible":
        return str(-rnd.randint(1, 9) if rnd.random() < 0.5 else rnd.randint(120, 250))
    return str(age)


def render_country(rnd: random.Random, code: str) -> str:
    return _variant(rnd, COUNTRY_VARIANTS[code], first_weight=0.4)


def render_segment(rnd: random.Random, segment: str) -> str:
    return rnd.choice(SEGMENT_VARIANTS[segment])


def render_signup_date(rnd: random.Random, day: date) -> str:
    style = rnd.random()
    if style < 0.4:
        return day.isoformat()
    if style < 0.6:
        return day.strftime("%Y/%m/%d")
    month = _MONTHS[day.month - 1]
    if style < 0.8:
        return f"{month[:3]} {day.day} {day.year}"
    return f"{day.day} {month} {day.year}"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


def email_address(first: str, last: str, number: int, domain: str) -> str:
    return f"{_ascii(first)}.{_ascii(last)}{number}@{domain}".lower()


def render_email(rnd: random.Random, address: str) -> str:
    """Mixed case and surrounding spaces, as typed into a CRM by hand."""
    case = rnd.random()
    if case < 0.15:
        local, domain = address.split("@")
        address = f"{local.title()}@{domain.title()}"
    elif case < 0.25:
        address = address.upper()
    if rnd.random() < 0.2:
        address = rnd.choice((" {}", "{} ", "  {}  ")).format(address)
    return address


def iso_utc(epoch_s: int) -> str:
    """The clean form: ``2026-01-05T13:45:00Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_offset(epoch_s: int, hours: int, separator: str) -> str:
    local = datetime.fromtimestamp(epoch_s, timezone(timedelta(hours=hours)))
    return local.isoformat(sep=separator)


def render_ordered_at(rnd: random.Random, epoch_s: int) -> str:
    style = rnd.random()
    if style < 0.4:
        return iso_utc(epoch_s)
    if style < 0.55:
        return _with_offset(epoch_s, rnd.choice((1, 2)), " ")
    if style < 0.7:
        return _with_offset(epoch_s, rnd.choice((-5, -8)), "T")
    if style < 0.85:
        return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y/%m/%d %H:%M:%S")
    return str(epoch_s)


def render_amount(rnd: random.Random, amount: float) -> str | float:
    """Text as in CSV; a plain number stays a float (a JSON number, or Parquet's float)."""
    style = rnd.random()
    if style < 0.35:
        return f"${amount:,.2f}"
    if style < 0.6:
        return f"{amount:.2f} USD"
    return round(amount, 2)


def render_order_status(rnd: random.Random, status: str) -> str:
    return rnd.choice(ORDER_STATUS_VARIANTS[status])


def render_ticket_created_at(rnd: random.Random, epoch_s: int) -> str:
    style = rnd.random()
    if style < 0.5:
        return iso_utc(epoch_s)
    if style < 0.75:
        return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return _with_offset(epoch_s, rnd.choice((1, -5)), "T")


def render_ticket_status(rnd: random.Random, status: str) -> str:
    return rnd.choice(TICKET_STATUS_VARIANTS[status])


def render_satisfaction(rnd: random.Random, score: int) -> int | str:
    style = rnd.random()
    if style < 0.5:
        return score
    if style < 0.8:
        return str(score)
    return f"{score}/5"


def render_channel(rnd: random.Random, channel: str) -> str:
    return _variant(rnd, CHANNEL_VARIANTS[channel], first_weight=0.6)


def render_subject(rnd: random.Random, order_ref: str) -> str:
    return rnd.choice(TICKET_SUBJECTS).format(order=order_ref)
