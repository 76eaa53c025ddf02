"""The aging trend as a PNG chart (matplotlib, no network): per currency, the open AR stacked by
age bucket over time, with DSO on a second axis."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

from ar_pipeline.tiering import currency_exponent  # noqa: E402

BUCKET_SERIES = (
    ("current_cents", "not yet due", "#4c9a2a"),
    ("days_1_30_cents", "1-30 days", "#a4c639"),
    ("days_31_60_cents", "31-60 days", "#f2c14e"),
    ("days_61_90_cents", "61-90 days", "#f08a4b"),
    ("days_over_90_cents", "over 90 days", "#c0392b"),
)


def trend_png(rows: Sequence[dict[str, Any]], title: str = "Receivables by age") -> bytes:
    """Render summary rows (any number of days and currencies) to PNG bytes."""
    currencies = sorted({r["currency"] for r in rows}) or ["-"]
    figure, axes = plt.subplots(
        len(currencies), 1, figsize=(10, 3.6 * len(currencies)), squeeze=False
    )
    for axis, currency in zip(axes[:, 0], currencies, strict=True):
        series = [r for r in rows if r["currency"] == currency]
        days = [r["as_of"] for r in series]
        scale = 10 ** currency_exponent(currency) * 1000  # thousands of major units
        axis.stackplot(
            days,
            *[[r[column] / scale for r in series] for column, _, _ in BUCKET_SERIES],
            labels=[label for _, label, _ in BUCKET_SERIES],
            colors=[color for _, _, color in BUCKET_SERIES],
            alpha=0.9,
        )
        axis.set_ylabel(f"open AR, thousand {currency}")
        axis.set_title(f"{title} ({currency})")
        axis.grid(alpha=0.3)
        dso = axis.twinx()
        dso.plot(
            days,
            [float(r["dso_days"]) if r.get("dso_days") is not None else None for r in series],
            color="#1f3b73",
            linewidth=2,
            label="DSO (days)",
        )
        dso.set_ylabel("DSO, days")
        dso.set_ylim(bottom=0)
        handles, labels = axis.get_legend_handles_labels()
        more_handles, more_labels = dso.get_legend_handles_labels()
        axis.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return buffer.getvalue()
