"""Reference: the order files to de-duplicated orders and per-customer totals, in pandas,
as someone without a pipeline would write it.

    python scripts/bench_reference/pandas_script.py LANDING_DIR OUT_DIR

Same work and grammars as ``duckdb_script.py`` (timestamps to UTC, amounts to cents,
statuses to a closed set, the later file wins, per-customer totals), vectorized string
operations throughout; writes ``orders.parquet`` and ``customers.parquet`` and prints a
summary as JSON.
"""

import json
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["order_id", "customer_id", "ordered_at", "amount", "status"]
TIMESTAMP = (
    r"^((?:19|20)\d{2}[-/]\d{1,2}[-/]\d{1,2})[T ]"
    r"((?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?) ?"
    r"(Z|[+-](?:0\d|1[0-3])(?::?[0-5]\d)?|[+-]14(?::?00)?)?$"
)
MONEY = r"^\s*([-+]?)\s*(\$|USD)?\s*([-+]?)\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*(USD)?\s*$"
STATUSES = {
    **dict.fromkeys(("placed", "pending", "new"), "placed"),
    "shipped": "shipped",
    **dict.fromkeys(("completed", "complete", "done"), "completed"),
    **dict.fromkeys(("cancelled", "canceled"), "cancelled"),
    **dict.fromkeys(("returned", "refunded"), "returned"),
}


def read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif path.suffix == ".jsonl":
        frame = pd.read_json(path, lines=True, dtype=False)
    else:
        frame = pd.read_parquet(path)
    frame = frame[COLUMNS].astype("string")
    frame["filename"] = path.name
    return frame


def parse_timestamps(text: pd.Series) -> pd.Series:
    text = text.str.strip()
    epoch = text.str.fullmatch(r"\d{9,10}(\.\d+)?").fillna(False)
    seconds = pd.to_numeric(text.where(epoch), errors="coerce")
    from_epoch = pd.to_datetime(seconds.where(seconds < 4102444800), unit="s")
    parts = text.str.extract(TIMESTAMP)
    local = pd.to_datetime(
        parts[0].str.replace("/", "-") + " " + parts[1], errors="coerce", format="mixed"
    )
    zone = parts[2].fillna("").replace("Z", "")
    sign = zone.str[0].map({"+": 1, "-": -1}).fillna(0)
    digits = zone.str[1:].str.replace(":", "")
    hours = pd.to_numeric(digits.str[:2], errors="coerce").fillna(0)
    minutes = pd.to_numeric(digits.str[2:4], errors="coerce").fillna(0)
    offset = pd.to_timedelta(sign * (hours * 60 + minutes), unit="min")
    return from_epoch.where(epoch, local - offset)


def parse_amounts(text: pd.Series) -> pd.Series:
    parts = text.str.strip().str.upper().str.extract(MONEY)
    ok = (
        parts[3].notna()
        & ((parts[0] == "") | (parts[2] == ""))
        & ((parts[2] == "") | parts[1].notna())
        & (parts[1].isna() | parts[4].isna())
    )
    number = (parts[0] + parts[2] + parts[3].str.replace(",", "")).where(ok)
    return pd.to_numeric(number, errors="coerce").round(2)


def main(landing: str, out: str) -> None:
    files = sorted(p for p in Path(landing).iterdir() if p.suffix in (".csv", ".jsonl", ".parquet"))
    raw = pd.concat([read(p) for p in files], ignore_index=True)
    orders = pd.DataFrame(
        {
            "order_id": raw["order_id"].str.strip().replace("", pd.NA),
            "customer_id": raw["customer_id"].str.strip().replace("", pd.NA),
            "ordered_at": parse_timestamps(raw["ordered_at"]),
            "amount": parse_amounts(raw["amount"]),
            "status": raw["status"].str.strip().str.lower().map(STATUSES),
            "filename": raw["filename"],
        }
    )
    orders = orders.sort_values("filename", kind="stable").drop_duplicates("order_id", keep="last")
    kept = orders["amount"].where(~orders["status"].isin(["cancelled", "returned"]))
    customers = (
        orders.assign(kept=kept)
        .dropna(subset=["customer_id"])
        .groupby("customer_id")
        .agg(
            orders=("order_id", "size"),
            spend=("kept", "sum"),
            first_order_at=("ordered_at", "min"),
            last_order_at=("ordered_at", "max"),
        )
    )
    Path(out).mkdir(parents=True, exist_ok=True)
    orders.to_parquet(Path(out) / "orders.parquet")
    customers.to_parquet(Path(out) / "customers.parquet")
    cents = int((orders["amount"] * 100).round().sum())
    amount = f"{cents // 100}.{cents % 100:02d}"
    print(json.dumps({"orders": len(orders), "amount": amount, "customers": len(customers)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
