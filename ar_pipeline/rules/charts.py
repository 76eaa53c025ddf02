"""The aging trend as a PNG chart (matplotlib, no network): per currency, the open AR stacked by
age bucket over time, with DSO (on net receivables) on a second axis."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

from ar_pipeline.rules.money import currency_exponent  # noqa: E402

BUCKET_SERIES = (
    ("current_cents", "not yet due", "#4c9a2a"),
    ("days_1_30_cents", "1-30 days", "#a4c639"),
    ("days_31_60_cents", "31-60 days", "#f2c14e"),
    ("days_61_90_cents", "61-90 days", "#f08a4b"),
    ("days_91_120_cents", "91-120 days", "#d35400"),
    ("days_over_120_cents", "over 120 days", "#922b21"),
)
# Rows built before over 90 was split (revision 0008) have only the sum: drawn as one band.
UNSPLIT = ("days_over_90_cents", "over 90 days (not split)", "#c0392b")


def _bands(series: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    unsplit = any(r.get("days_91_120_cents") is None for r in series)
    return [*BUCKET_SERIES, UNSPLIT] if unsplit else list(BUCKET_SERIES)


def _band_value(row: dict[str, Any], column: str) -> int:
    if column == UNSPLIT[0]:  # only the rows without the split
        return row[column] if row.get("days_91_120_cents") is None else 0
    return row.get(column) or 0


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
        bands = _bands(series)
        axis.stackplot(
            days,
            *[[_band_value(r, column) / scale for r in series] for column, _, _ in bands],
            labels=[label for _, label, _ in bands],
            colors=[color for _, _, color in bands],
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
