"""Property tests of the dbt value parsers (dbt_project/macros), run as plain SQL in DuckDB.

The macros are compiled once by dbt itself (``dbt compile --inline``), so the SQL under
test is exactly what the staging models run; hypothesis then feeds it text in an
in-memory DuckDB. Three properties per parser: any text gives null or a value in the
documented range without raising; every form the demo generator writes parses back to
the true value; text that cannot hold a value is null.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from churn_demo import messy
from dbt.cli.main import dbtRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from training_pipeline.settings import DBT_PROJECT_DIR, DEFAULT_PROJECT_DIR, PROJECT_DBT_MODELS

# Each parser column of the compiled query, and the macro call that produces it.
PARSERS = {
    "age": "parse_age('v')",
    "signup_date": "parse_date('v')",
    "amount": "parse_money('v')",
    "satisfaction": "parse_satisfaction('v')",
    "at_utc": "parse_timestamp_utc('v')",
    "record_id": "parse_integer('v')",
    "measurement": "parse_decimal('v')",
    "email": "normalize_email('v')",
    "country": "normalize_country('v')",
    "segment": "normalize_segment('v')",
    "channel": "normalize_channel('v')",
    "order_status": "normalize_status('v', 'order')",
    "ticket_status": "normalize_status('v', 'ticket')",
}

CLOSED_SETS = {
    "country": {"US", "DE", "GB", "FR", "ES", "NL", "IT", "CA"},
    "segment": {"consumer", "smb", "enterprise"},
    "channel": {"email", "phone", "chat"},
    "order_status": {"placed", "shipped", "completed", "cancelled", "returned"},
    "ticket_status": {"open", "pending", "resolved", "closed"},
}

NUMBER_WORDS = (*messy._ONES, "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
                "eighty", "ninety")  # fmt: skip

SLOW_OK = [HealthCheck.too_slow]
PROPERTY = settings(max_examples=examples(100), deadline=None, suppress_health_check=SLOW_OK)
FEW = settings(max_examples=examples(40), deadline=None, suppress_health_check=SLOW_OK)

# Any text DuckDB can hold: no NUL byte, no lone surrogate (neither can be a VARCHAR).
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
# Text built from the pieces the parsers look for, so that near misses are frequent.
NEAR_MISS = st.lists(
    st.sampled_from(list("0123456789-/:.,+ $TZ") + ["USD", "age", "yrs", "y/o", "twenty",
                                                     "five", "Mar", "March", "@", "e"]),
    max_size=12,
).map("".join)  # fmt: skip
NO_DIGITS = st.text(
    st.characters(exclude_categories=("Nd", "Cs"), exclude_characters="\x00"), max_size=30
)


class Parsers:
    """The macros as dbt compiles them, evaluated in an in-memory DuckDB."""

    def __init__(self, expressions: dict[str, str]) -> None:
        self.expressions = expressions
        self.con = duckdb.connect()

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"Parsers({sorted(self.expressions)})"

    def _run(self, select: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "with input as (select unnest(range(len($values))) as i, unnest($values) as v) "
            f"select {select} from input order by i",
            {"values": list(values)},
        ).fetchall()

    def __call__(self, parser: str, values: Sequence[Any]) -> list[Any]:
        """``parser`` applied to each value (text, or a number typed as DuckDB types it)."""
        if not values:
            return []
        return [row[0] for row in self._run(self.expressions[parser], values)]

    def all(self, values: Sequence[str]) -> list[dict[str, Any]]:
        """Every parser applied to each value, one dict per value."""
        columns = ", ".join(f"{expr} as {name}" for name, expr in self.expressions.items())
        rows = self._run(columns, values) if values else []
        return [dict(zip(self.expressions, row, strict=True)) for row in rows]


# The parsers whose macro tries the forms files mostly hold before its whole grammar, and
# the same macro with its grammar alone: the two must agree on every text.
GRAMMAR_ALONE = {
    "at_utc": "parse_timestamp_utc('v', fast_forms=false)",
    "amount": "parse_money('v', fast_forms=false)",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each macro call of PARSERS and GRAMMAR_ALONE rendered to SQL over a column ``v`` by
    one ``dbt compile`` (the grammar-alone calls keyed ``grammar:<parser>``)."""
    calls = PARSERS | {f"grammar:{name}": call for name, call in GRAMMAR_ALONE.items()}
    work = tmp_path_factory.mktemp("dbt_compile")
    (work / "data").mkdir()  # dbt-duckdb opens the profile's warehouse file there
    inline = "\n".join(f"-- parser: {name}\n{{{{ {call} }}}}" for name, call in calls.items())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINING_PIPELINE_DATA_DIR", str(work / "data"))
        patch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        result = dbtRunner().invoke(
            [
                "compile", "--inline", inline, "--quiet", "--no-partial-parse",
                "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
            ]
        )  # fmt: skip
    assert result.success, f"dbt compile of the parser macros failed: {result.exception}"
    code = result.result.results[0].node.compiled_code
    pieces = re.split(r"^-- parser: ([\w:]+)$", code, flags=re.MULTILINE)[1:]
    expressions = {name: expr.strip() for name, expr in zip(pieces[::2], pieces[1::2], strict=True)}
    assert list(expressions) == list(calls), code
    return expressions


@pytest.fixture(scope="module")
def parse(compiled: dict[str, str]) -> Iterator[Parsers]:
    """Each parser macro as the staging models call it."""
    parsers = Parsers({name: compiled[name] for name in PARSERS})
    try:
        yield parsers
    finally:
        parsers.con.close()


@pytest.fixture(scope="module")
def grammar_alone(compiled: dict[str, str]) -> Iterator[Parsers]:
    """The parsers of GRAMMAR_ALONE without their forms tried first."""
    parsers = Parsers({name: compiled[f"grammar:{name}"] for name in GRAMMAR_ALONE})
    try:
        yield parsers
    finally:
        parsers.con.close()


def in_documented_range(parser: str, value: Any) -> bool:
    """The range each macro's header promises for whatever it does not null."""
    if value is None:
        return True
    if parser in CLOSED_SETS:
        return value in CLOSED_SETS[parser]
    checks = {
        "age": lambda v: isinstance(v, int) and 1 <= v <= 119,
        "satisfaction": lambda v: isinstance(v, int) and 1 <= v <= 5,
        "record_id": lambda v: isinstance(v, int) and 0 <= v < 10**18,
        "signup_date": lambda v: date(1900, 1, 1) <= v <= date(2099, 12, 31),
        # The year as written is 1900-2099; an offset of up to 14 h may cross it in UTC.
        "at_utc": lambda v: datetime(1899, 12, 31, 10) <= v <= datetime(2100, 1, 1, 14),
        "amount": lambda v: abs(v) < Decimal(10) ** 10 and v == v.quantize(Decimal("0.01")),
        "measurement": lambda v: isinstance(v, float) and math.isfinite(v),
        "email": lambda v: (
            v == v.lower()
            and v.count("@") == 1
            and len(v) <= 254
            and not any(c.isspace() for c in v)
        ),
    }
    return checks[parser](value)


@PROPERTY
@given(texts=st.lists(st.one_of(ANY_TEXT, NEAR_MISS), min_size=1, max_size=25))
def test_any_text_parses_to_null_or_a_value_in_the_documented_range(parse, texts):
    results = parse.all(texts)
    assert len(results) == len(texts)
    for text, parsed in zip(texts, results, strict=True):
        for parser, value in parsed.items():
            assert in_documented_range(parser, value), f"{parser}({text!r}) = {value!r}"


NUMERIC = ("age", "signup_date", "amount", "satisfaction", "at_utc", "record_id", "measurement")


def has_digit(text: str) -> bool:
    return any(c.isdigit() for c in text)


@PROPERTY
@given(
    texts=st.lists(
        st.one_of(NO_DIGITS, ANY_TEXT, ANY_TEXT.map(lambda t: t + "7")), min_size=1, max_size=25
    )
)
def test_text_that_cannot_hold_a_value_is_null(parse, texts):
    """No digit and no number word: no number, date or time. A digit: no known spelling
    (country, segment, status, channel). No "@": no e-mail."""
    for text, parsed in zip(texts, parse.all(texts), strict=True):
        nulls = set()
        if not has_digit(text) and not any(w in text.lower() for w in NUMBER_WORDS):
            nulls |= set(NUMERIC)
        if has_digit(text):
            nulls |= set(CLOSED_SETS)
        if "@" not in text:
            nulls.add("email")
        assert {p: parsed[p] for p in nulls} == dict.fromkeys(nulls), repr(text)


def test_blank_or_missing_text_parses_to_null_for_every_parser(parse):
    """The nulled-value count takes a parsed value as a non-blank delivered one
    (``cleaning/nulled_values.py``): no parser may make a value out of nothing."""
    blanks = [None, "", " ", "    "]
    for text, parsed in zip(blanks, parse.all(blanks), strict=True):
        assert parsed == dict.fromkeys(PARSERS), repr(text)


@pytest.mark.parametrize(
    "text",
    ["abc12", "12abc", "age 12 or 13", "~25", "25.5", "1/2", "999", "0", "-4", "twentyfive"],
)
def test_an_age_is_never_picked_out_of_other_text(parse, text):
    assert parse("age", [text]) == [None]


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        ("signup_date", "2024-13-45"),
        ("signup_date", "2026-02-29"),
        ("signup_date", "4 Mar 25"),  # a two-digit year is not year 25
        ("signup_date", "0001-01-01"),
        ("signup_date", "03/04/2025"),  # day-first or month-first: ambiguous
        ("at_utc", "2026-02-30T00:00:00Z"),  # strptime with %z would roll over to March
        ("at_utc", "2026-01-05T24:00:00"),
        ("at_utc", "2026-01-05T13:45:00+99:00"),
        ("at_utc", "9999999999"),  # epoch seconds in 2286
        ("at_utc", "2026-01-05"),
        ("amount", "$5 USD"),
        ("amount", "-$-5"),
        ("amount", "12,50"),
        ("amount", "1e5"),
        ("amount", "10000000000"),
        ("record_id", "9.5"),  # a cast would round it to 10
        ("record_id", "0x10"),  # a cast would read 16
        ("measurement", "1,234"),  # thousands separator
        ("measurement", "12,5"),  # decimal comma
        ("measurement", "1e3"),  # a cast would read 1000
        ("measurement", "nan"),  # a cast would read NaN
        ("measurement", "inf"),
        ("measurement", "12 mm"),
        ("measurement", "."),
        ("measurement", "--1"),
        ("email", "a@..x"),
        ("email", "<x>@y.z"),
    ],
)
def test_impossible_or_ambiguous_values_are_null_not_guessed(parse, parser, text):
    assert parse(parser, [text]) == [None]


class ForcedStyle(random.Random):
    """A random source whose weighted choice is fixed, to render one chosen style."""

    def __init__(self, style: str) -> None:
        super().__init__(0)
        self.style = style

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        return [self.style] * k


AGE_STYLES = [name for name, _ in messy._AGE_STYLES]
UNPARSEABLE_AGE_STYLES = {"blank", "impossible"}  # the generator's deliberately bad ages


@FEW
@given(age=st.integers(1, 99))
def test_every_age_style_of_the_generator_parses_back_to_the_age(parse, age):
    rendered = [messy.render_age(ForcedStyle(style), age) for style in AGE_STYLES]
    expected = [None if s in UNPARSEABLE_AGE_STYLES else age for s in AGE_STYLES]
    assert parse("age", rendered) == expected, rendered


RANDOMS = st.randoms(use_true_random=False)
EPOCHS = st.integers(
    int(datetime(2020, 1, 1, tzinfo=UTC).timestamp()),
    int(datetime(2035, 1, 1, tzinfo=UTC).timestamp()),
)


def utc(epoch_s: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(seconds=epoch_s)


@PROPERTY
@given(rnd=RANDOMS, epochs=st.lists(EPOCHS, min_size=1, max_size=20))
def test_every_generated_timestamp_form_parses_to_the_utc_instant(parse, rnd, epochs):
    rendered = [messy.render_ordered_at(rnd, e) for e in epochs]
    rendered += [messy.render_ticket_created_at(rnd, e) for e in epochs]
    rendered += [messy.iso_utc(e) for e in epochs]  # updated_at
    assert parse("at_utc", rendered) == [utc(e) for e in epochs] * 3


def test_every_zone_offset_the_grammar_admits_is_subtracted_to_give_utc(parse):
    local = datetime(2026, 1, 5, 13, 45)
    texts, expected = [], []
    for sign in (1, -1):
        for hours in range(15):
            for minutes in range(60) if hours < 14 else (0,):
                hh, mm = f"{'+' if sign > 0 else '-'}{hours:02d}", f"{minutes:02d}"
                offset = sign * timedelta(hours=hours, minutes=minutes)
                forms = [f"{hh}{mm}", f"{hh}:{mm}"] + ([hh] if minutes == 0 else [])
                for zone in forms:
                    texts += [f"2026-01-05T13:45:00{zone}", f"2026-01-05 13:45 {zone}"]
                    expected += [local - offset] * 2
    texts += [
        "2026-01-05T13:45:00Z",
        "2026-01-05T13:45:00",
        "2026-01-05T13:45+14:01",
        "2026-01-05T13:45+15",
        "2026-01-05T13:45+1:00",
        "2026-01-05T13:45+01:60",
    ]
    expected += [local, local, None, None, None, None]
    assert parse("at_utc", texts) == expected


@PROPERTY
@given(rnd=RANDOMS, cents=st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_every_generated_amount_form_parses_to_the_amount_in_cents(parse, rnd, cents):
    amounts = [c / 100 for c in cents]
    rendered = [messy.render_amount(rnd, a) for a in amounts]
    expected = [Decimal(c) / 100 for c in cents]
    # Text as written to CSV and JSON, and floats cast by DuckDB as read from Parquet.
    as_text = [r if isinstance(r, str) else repr(r) for r in rendered]
    assert parse("amount", as_text) == expected, as_text
    assert parse("amount", [float(a) for a in amounts]) == expected


@PROPERTY
@given(
    rnd=RANDOMS,
    days=st.lists(st.dates(date(1900, 1, 1), date(2099, 12, 31)), min_size=1, max_size=20),
)
def test_every_generated_signup_date_form_parses_to_the_day(parse, rnd, days):
    rendered = [messy.render_signup_date(rnd, d) for d in days]
    assert parse("signup_date", rendered) == days, rendered


@PROPERTY
@given(rnd=RANDOMS, scores=st.lists(st.integers(1, 5), min_size=1, max_size=20))
def test_every_generated_satisfaction_form_parses_to_the_score(parse, rnd, scores):
    rendered = [str(messy.render_satisfaction(rnd, s)) for s in scores]
    assert parse("satisfaction", rendered) == scores, rendered


@PROPERTY
@given(
    rnd=RANDOMS,
    people=st.lists(
        st.tuples(
            st.sampled_from(messy.FIRST_NAMES),
            st.sampled_from(messy.LAST_NAMES),
            st.integers(0, 9999),
            st.sampled_from(messy.EMAIL_DOMAINS),
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_every_generated_email_form_parses_to_the_lower_case_address(parse, rnd, people):
    addresses = [messy.email_address(*person) for person in people]
    rendered = [messy.render_email(rnd, a) for a in addresses]
    assert parse("email", rendered) == addresses, rendered


# The generator's spelling groups and the value staging maps each group to.
SPELLINGS = {
    "country": {code: code for code in messy.COUNTRY_VARIANTS},
    "segment": {s: s for s in messy.SEGMENT_VARIANTS},
    "channel": {c: c for c in messy.CHANNEL_VARIANTS},
    "order_status": {s: s for s in messy.ORDER_STATUS_VARIANTS}
    | {"refunded": "returned", "pending": "placed"},
    "ticket_status": {s: s for s in messy.TICKET_STATUS_VARIANTS},
}
VARIANTS = {
    "country": messy.COUNTRY_VARIANTS,
    "segment": messy.SEGMENT_VARIANTS,
    "channel": messy.CHANNEL_VARIANTS,
    "order_status": messy.ORDER_STATUS_VARIANTS,
    "ticket_status": messy.TICKET_STATUS_VARIANTS,
}


@pytest.mark.parametrize("parser", list(VARIANTS))
def test_every_generated_spelling_maps_to_its_value(parse, parser):
    pairs = [(v, group) for group, spellings in VARIANTS[parser].items() for v in spellings]
    results = parse(parser, [v for v, _ in pairs])
    assert results == [SPELLINGS[parser][group] for _, group in pairs]


def test_the_parsers_under_test_are_every_macro_the_staging_models_call():
    """Regression guard: a new parser macro must be added to PARSERS to be tested."""
    staging = DEFAULT_PROJECT_DIR / PROJECT_DBT_MODELS / "staging"
    called = {
        name
        for sql in staging.glob("*.sql")
        for name in re.findall(r"\{\{\s*(\w+)\(", sql.read_text())
        # dbt's own, and the macro that builds _delivered from parsed columns
        if name not in {"source", "ref", "config", "refused_texts"}
    }
    tested = {call.split("(")[0] for call in PARSERS.values()}
    assert called <= tested, f"untested parser macros: {sorted(called - tested)}"


@PROPERTY
@given(
    tenths=st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=20),
    padding=st.sampled_from(["", " ", "  "]),
)
def test_every_measurement_as_the_weather_files_write_it_parses_to_its_value(
    parse, tenths, padding
):
    values = [t / 10 for t in tenths]
    # The vega CSV writes "12.8", "-2.1", "0.0" and "7"; a leading "+" or a bare ".5" is
    # the same number.
    rendered = [f"{padding}{v}{padding}" for v in values]
    rendered += [str(int(v)) for v in values if v.is_integer()]
    expected = values + [float(int(v)) for v in values if v.is_integer()]
    assert parse("measurement", rendered) == expected, rendered
    assert parse("measurement", ["+0.5", ".5", "-.5"]) == [0.5, 0.5, -0.5]


def _two_digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Texts at and around the forms tried first: years, days, hours and offsets just outside
# their ranges, both date separators (mixed too), surrounding spaces, other zone spellings.
TIMESTAMP_LIKE = st.builds(
    lambda pad, year, sep1, month, sep2, day, t, hh, mm, ss, zone, pad2: (
        f"{pad}{year}{sep1}{month}{sep2}{day}{t}{hh}:{mm}:{ss}{zone}{pad2}"
    ),
    st.sampled_from(["", "", " "]),
    st.integers(1890, 2110).map(str),
    st.sampled_from(["-", "/"]),
    _two_digits(0, 13),
    st.sampled_from(["-", "/"]),
    _two_digits(0, 32),
    st.sampled_from(["T", " ", "t"]),
    _two_digits(0, 25),
    _two_digits(0, 61),
    _two_digits(0, 61),
    st.one_of(
        st.sampled_from(["", "Z", "z", " Z", "+00", "-0530", " +01:00", ".5Z", "+14:00"]),
        st.builds(
            lambda sign, hh, mm: f"{sign}{hh}:{mm}",
            st.sampled_from(["+", "-"]),
            _two_digits(0, 15),
            _two_digits(0, 60),
        ),
    ),
    st.sampled_from(["", "", " "]),
)
EPOCH_LIKE = st.builds(
    lambda pad, seconds, fraction: f"{pad}{seconds}{fraction}",
    st.sampled_from(["", " "]),
    st.integers(10**8 - 1, 10**10 + 1),
    st.sampled_from(["", ".5", ".", ".123456789"]),
)
AMOUNT_LIKE = st.builds(
    lambda pad, prefix, digits, decimals, suffix: f"{pad}{prefix}{digits}{decimals}{suffix}",
    st.sampled_from(["", "", " "]),
    st.sampled_from(["", "", "$", "-$", "$-", "+", "-", "USD ", "usd", "$ "]),
    st.one_of(st.integers(0, 10**11).map(str), st.sampled_from(["1,234", "12,34", "0012"])),
    st.sampled_from(["", ".5", ".50", ".505", ".005", ".", ".1234567"]),
    st.sampled_from(["", "", " USD", "USD", " usd", "  USD", " USD ", " EUR"]),
)


@PROPERTY
@given(
    texts=st.lists(
        st.one_of(ANY_TEXT, NEAR_MISS, TIMESTAMP_LIKE, EPOCH_LIKE, AMOUNT_LIKE),
        min_size=1,
        max_size=25,
    )
)
def test_the_forms_tried_first_give_what_the_whole_grammar_gives(parse, grammar_alone, texts):
    for parser in GRAMMAR_ALONE:
        assert parse(parser, texts) == grammar_alone(parser, texts), parser


def test_the_forms_tried_first_agree_with_the_grammar_at_their_edges(parse, grammar_alone):
    timestamps = {
        "2026-01-05T13:45:00Z": datetime(2026, 1, 5, 13, 45),
        "2026/01/05 13:45:00": datetime(2026, 1, 5, 13, 45),
        "2026-01-05 13:45:00+05:30": datetime(2026, 1, 5, 8, 15),
        "2026-01-05T13:45:00-14:00": datetime(2026, 1, 6, 3, 45),
        "1900-01-01T00:00:00+14:00": datetime(1899, 12, 31, 10),
        " 2026-01-05T13:45:00Z ": datetime(2026, 1, 5, 13, 45),
        "1767620700": datetime(2026, 1, 5, 13, 45),
        "2026-02-30T00:00:00Z": None,
        "2026-01-05T24:00:00Z": None,
        "2026-01-05T13:45:60Z": None,
        "2026-01-05T13:45:00+14:01": None,
        "2026-01/05 13:45:00": None,
        "2100-01-01T00:00:00Z": None,
        "4102444800": None,
    }
    amounts = {
        "12.50": Decimal("12.50"),
        "$12.505": Decimal("12.51"),
        "12.5 USD": Decimal("12.50"),
        "0012": Decimal("12.00"),
        "9999999999.99": Decimal("9999999999.99"),
        "10000000000": None,
        "$ 12.50": Decimal("12.50"),
        "12.50USD": Decimal("12.50"),
        "12,50": None,
        "1e5": None,
    }
    for parser, cases in (("at_utc", timestamps), ("amount", amounts)):
        texts = list(cases)
        assert parse(parser, texts) == list(cases.values()), parser
        assert grammar_alone(parser, texts) == list(cases.values()), parser
