"""Altair (Vega-Lite) charts for the dashboard: values on hover everywhere, zoom and pan on the time axis."""

from __future__ import annotations

import altair as alt
import pandas as pd


def _tooltip(df: pd.DataFrame, fields: list[str], formats: dict[str, str]) -> list[alt.Tooltip]:
    out = []
    for f in fields:
        if pd.api.types.is_datetime64_any_dtype(df[f]):
            out.append(alt.Tooltip(f, type="temporal", format="%Y-%m-%d %H:%M"))
        elif pd.api.types.is_numeric_dtype(df[f]):
            out.append(alt.Tooltip(f, type="quantitative", format=formats.get(f, ",.4~f")))
        else:
            out.append(alt.Tooltip(f, type="nominal"))
    return out


def time_lines(df: pd.DataFrame, x: str, y: str, color: str | None = None, *, y_title: str, y_format: str = ",.0f",
               height: int = 260, rule: float | None = None, zero: bool = True) -> alt.Chart:  # fmt: skip
    """Lines over time, one per ``color``; hover shows the values, drag pans and the wheel zooms the time axis.
    ``rule`` draws a horizontal limit; ``zero=False`` fits the y axis to the data (a NAV)."""
    enc = {
        "x": alt.X(f"{x}:T", title=None),
        "y": alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format), scale=alt.Scale(zero=zero)),
        "tooltip": _tooltip(df, [c for c in (x, color, y) if c], {y: y_format}),
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    chart = alt.Chart(df).mark_line(point=False, interpolate="step-after").encode(**enc)
    points = alt.Chart(df).mark_point(size=40, opacity=0).encode(**enc)  # hover targets along the line
    layers = [chart, points]
    if rule is not None:
        layers.append(alt.Chart(pd.DataFrame({"limit": [rule]})).mark_rule(color="firebrick", strokeDash=[4, 3])
                      .encode(y="limit:Q", tooltip=[alt.Tooltip("limit:Q", format=y_format)]))  # fmt: skip
    return alt.layer(*layers).properties(height=height).interactive(bind_y=False)


def bars(df: pd.DataFrame, category: str, value: str, *, value_title: str, value_format: str = ",.0f",
         color: str | None = None, limit: float | None = None, height: int | None = None,
         in_order: bool = False) -> alt.Chart:  # fmt: skip
    """Horizontal bars, largest first (``in_order``: in the frame's order, a funnel's), with the value on hover;
    ``limit`` draws a vertical limit line. A count axis (format ``,.0f``) ticks whole numbers only."""
    counts = value_format == ",.0f"
    enc = {
        "y": alt.Y(
            f"{category}:N",
            sort=df[category].tolist() if in_order else "-x",
            title=None,
            axis=alt.Axis(labelOverlap=False, labelLimit=260),
        ),
        "x": alt.X(
            f"{value}:Q",
            title=value_title,
            axis=alt.Axis(format=value_format, tickMinStep=1) if counts else alt.Axis(format=value_format),
        ),
        "tooltip": _tooltip(df, [c for c in (category, color, value) if c], {value: value_format}),
    }
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
    layers = [alt.Chart(df).mark_bar().encode(**enc)]
    if limit is not None:
        layers.append(alt.Chart(pd.DataFrame({"limit": [limit]})).mark_rule(color="firebrick", strokeDash=[4, 3])
                      .encode(x="limit:Q", tooltip=[alt.Tooltip("limit:Q", format=value_format)]))  # fmt: skip
    return alt.layer(*layers).properties(height=height or 60 + 34 * df[category].nunique())  # axis + rows


def intervals(df: pd.DataFrame, x: str, lo: str, mid: str, hi: str, *, y_title: str, y_format: str = ".2f",
              height: int = 220) -> alt.Chart:  # fmt: skip
    """A point estimate over time inside its interval band (a score's credible interval)."""
    base = alt.Chart(df).encode(x=alt.X(f"{x}:T", title=None))
    band = base.mark_area(opacity=0.25).encode(y=alt.Y(f"{lo}:Q", title=y_title, axis=alt.Axis(format=y_format)),
                                               y2=f"{hi}:Q")  # fmt: skip
    line = base.mark_line(point=True).encode(y=f"{mid}:Q", tooltip=_tooltip(df, [x, mid, lo, hi], {}))
    return alt.layer(band, line).properties(height=height).interactive(bind_y=False)
