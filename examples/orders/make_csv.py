"""Write the orders example's CSV files, as a source system would export them.

    python examples/orders/make_csv.py OUT_DIR [--seed 3]

``OUT_DIR/events/orders-YYYY-MM-DD.csv``: one file per local business day, none on Sundays
(the stores are closed), local times with their UTC offset (+01:00), string ids with leading
zeros, no promo code on most orders (an empty field) and a column the spec does not know
(``courier_note``). ``OUT_DIR/labels.csv``: one refund decision per delivered order, hours to
days after it, as known when the extract was taken (2026-02-15); cancelled orders never get
one. Same seed, same bytes.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

START, END = pd.Timestamp("2026-01-05", tz="UTC"), pd.Timestamp("2026-02-15", tz="UTC")
LOCAL = "+01:00"


def orders(rng: np.random.Generator) -> pd.DataFrame:
    """Orders of every open day: ~400 a day, customers with their own refund habit."""
    days = pd.date_range(START, END, freq="D", inclusive="left").tz_localize(None)
    days = days[days.day_of_week != 6]
    per_day = rng.poisson(400, len(days))
    day = np.repeat(days.values, per_day)
    n = len(day)
    # lunch and dinner peaks, local time (UTC+1)
    hour = np.where(rng.random(n) < 0.45, rng.normal(12.5, 1.2, n), rng.normal(19.5, 1.5, n))
    local = np.sort(day + pd.to_timedelta(np.clip(hour, 8, 23.9) * 3600, unit="s").values)
    customers = 500
    customer = rng.integers(0, customers, n)
    abuser = rng.random(customers) < 0.08
    promo = np.where(rng.random(n) < 0.2, rng.choice(["WELCOME10", "FREEDEL", "SPRING5"], n), "")
    channel = rng.choice(["app", "web", "phone", "kiosk"], n, p=[0.6, 0.3, 0.09, 0.01])
    amount = np.round(rng.lognormal(3.2, 0.5, n), 2)
    status = np.where(rng.random(n) < 0.06, "cancelled", "delivered")
    logit = (-4.2 + 3.0 * abuser[customer] + 0.9 * (channel == "phone") + 0.012 * amount
             + 0.5 * (promo != ""))
    refunded = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({
        "order_id": [f"O-{i:07d}" for i in range(n)],
        "ordered_at": pd.Series(local).dt.round("s"),
        "customer_id": [f"C-{c:05d}" for c in customer],
        "store_id": [f"S-{s:03d}" for s in rng.integers(0, 40, n)],
        "promo_code": promo, "amount": amount, "channel": channel, "status": status,
        "courier_note": rng.choice(["", "ring twice", "leave at door"], n),
        "_refunded": refunded,
    })
    return frame


def labels(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Refund decisions of delivered orders, 2 hours to 4 days later, known by the extract."""
    done = frame[frame["status"] == "delivered"]
    utc = (done["ordered_at"] - pd.Timedelta(hours=1)).dt.tz_localize("UTC")
    resolved = (utc + pd.to_timedelta(rng.uniform(2, 96, len(done)), unit="h")).dt.round("s")
    out = pd.DataFrame({"order_id": done["order_id"], "refunded": done["_refunded"],
                        "resolved_at": resolved})
    return out[out["resolved_at"] < END].sort_values(["resolved_at", "order_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    frame = orders(rng)
    (args.out / "events").mkdir(parents=True, exist_ok=True)
    stamp = frame["ordered_at"].dt.strftime("%Y-%m-%dT%H:%M:%S") + LOCAL
    for day, rows in frame.assign(ordered_at=stamp).groupby(frame["ordered_at"].dt.date):
        rows.drop(columns="_refunded").to_csv(args.out / "events" / f"orders-{day}.csv",
                                              index=False)
    lab = labels(frame, rng)
    lab.assign(resolved_at=lab["resolved_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        args.out / "labels.csv", index=False)
    print(f"{len(frame):,} orders in {frame['ordered_at'].dt.date.nunique()} daily files, "
          f"{len(lab):,} labels -> {args.out}")


if __name__ == "__main__":
    main()
