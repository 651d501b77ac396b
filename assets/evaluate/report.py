"""The evaluation report: one self-contained HTML page (inline CSS, plots as base64 PNGs) from the evaluation
frames. Pure: pandas, numpy and matplotlib (Agg) only; no Dagster, no DuckDB, no network.

``render_report(data, meta, real=None)`` takes the frames keyed as in the evaluation group (``targets``,
``summary``, ``daily``, ``funnel``, ``ic_monthly``, ``wqs``, ``brinson``, ``contribution``, ``regression``,
``validation``, ``folds``); any may be missing or empty, and that section then says "no data". Missing values
print as "–". Every string from the data is HTML-escaped. Plots are ``<img data-plot="NAME">`` inside a
``<figure>`` with a one-sentence ``<figcaption>``; the body carries ``data-plots-expected`` (how many were
written) and a small script sets ``data-plots-rendered`` to how many decoded once the page has loaded, so a
headless browser can check that every plot displays.

The output is byte-identical for the same input (PNG metadata carries no software version or time; only
``meta["generated_at"]``, when given, differs between runs).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from .backtest import unmeasurable

TITLE = "whalecopy: out-of-sample evidence"
MISSING = "–"
DPI = 100
FIGSIZE = (8.0, 3.6)
NO_DATA = "no data"

#: matplotlib settings for every plot, applied in a context so the caller's rcParams are untouched
_RC = {
    "svg.hashsalt": "whalecopy",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}

#: target names formatted as percentages (fractions); names starting with "sharpe" get two decimals
_PERCENT_TARGET_WORDS = ("drawdown", "tail", "share", "selection", "reduction", "cagr", "rate", "return")

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:1.5em;color:#1f2328;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d0d7de;
padding-bottom:.2em}h3{font-size:1.05em}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.5em 0 1em}
dl.meta dt{font-weight:600;color:#57606a}dl.meta dd{margin:0}
.table-wrap{overflow-x:auto;margin:.6em 0 1em}
table{border-collapse:collapse;font-size:.85em;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:.25em .55em;text-align:right;vertical-align:top}
td.num{white-space:nowrap}th{background:#f6f8fa}td.text,th.text{text-align:left}tr.total td{font-weight:600;background:#f6f8fa}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.85em;color:#57606a;margin-top:.3em}
p.nodata{color:#8c959f;font-style:italic}
.ok{color:#1a7f37}.bad{color:#cf222e}
.caveat{border-left:4px solid #bf8700;background:#fff8c5;padding:.6em .9em;margin:1em 0;font-weight:500}
section.real{margin-top:3em;border-top:3px double #d0d7de}
"""

_SCRIPT = """<script>
window.addEventListener("load", function () {
  var n = 0;
  document.querySelectorAll("img[data-plot]").forEach(function (img) {
    if (img.complete && img.naturalWidth > 0) { n += 1; }
  });
  document.body.dataset.plotsRendered = String(n);
});
</script>"""


# ---------------------------------------------------------------------------------------------------------------
# formatting


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _float(x: Any) -> float:
    if _missing(x):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def fmt_pct(x: Any, digits: int = 1, signed: bool = False) -> str:
    v = _float(x)
    if not math.isfinite(v):
        return MISSING
    return f"{v:+.{digits}%}" if signed else f"{v:.{digits}%}"


def fmt_num(x: Any, digits: int = 2) -> str:
    v = _float(x)
    if not math.isfinite(v):
        return MISSING
    return f"{v:,.{digits}f}"


def fmt_int(x: Any) -> str:
    v = _float(x)
    if not math.isfinite(v):
        return MISSING
    return f"{round(v):,}"


def fmt_money(x: Any) -> str:
    v = _float(x)
    if not math.isfinite(v):
        return MISSING
    return f"-${abs(v):,.0f}" if v < 0 else f"${v:,.0f}"


def fmt_p(x: Any) -> str:
    v = _float(x)
    if not math.isfinite(v):
        return MISSING
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def fmt_bool(x: Any) -> str:
    if _missing(x):
        return MISSING
    return "✔" if bool(x) else "✘"


def fmt_date(x: Any) -> str:
    if _missing(x):
        return MISSING
    if hasattr(x, "isoformat"):
        if isinstance(x, pd.Timestamp) and x == x.normalize():
            return x.date().isoformat()
        return x.isoformat()
    return str(x)


def fmt_text(x: Any) -> str:
    return MISSING if _missing(x) else str(x)


def fmt_auto(x: Any) -> str:
    """A cell of a frame whose columns the report does not know."""
    if _missing(x):
        return MISSING
    if isinstance(x, bool | np.bool_):
        return fmt_bool(x)
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    if isinstance(x, float | np.floating):
        v = float(x)
        if not math.isfinite(v):
            return MISSING
        if v == round(v) and abs(v) < 1e15:
            return f"{v:,.0f}"
        return f"{v:,.2f}" if abs(v) >= 100 else f"{v:.4g}"
    if hasattr(x, "isoformat"):
        return fmt_date(x)
    return str(x)


def _interval(lo: Any, hi: Any, f: Callable[[Any], str]) -> str:
    if _missing(lo) and _missing(hi):
        return MISSING
    return f"[{f(lo)}, {f(hi)}]"


def _target_formatter(name: Any) -> Callable[[Any], str]:
    n = str(name).lower()
    if n.startswith("sharpe"):
        return lambda x: fmt_num(x, 2)
    if any(w in n for w in _PERCENT_TARGET_WORDS):
        return lambda x: fmt_pct(x, 1)
    return lambda x: fmt_num(x, 3)


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _label(x: Any) -> str:
    """A string from the data made safe for a matplotlib label (no mathtext, not hidden by a leading "_")."""
    s = str(x).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _thousands(v: float, _pos: Any = None) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.2g}"


# ---------------------------------------------------------------------------------------------------------------
# frames


def _frame(x: Any) -> pd.DataFrame:
    return x if isinstance(x, pd.DataFrame) else pd.DataFrame()


def _usable(df: pd.DataFrame, cols: Iterable[str]) -> bool:
    return not df.empty and all(c in df.columns for c in cols)


def _get(row: pd.Series, col: str) -> Any:
    return row[col] if col in row.index else None


def _strategies(daily: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(daily["strategy"].astype(str)))


def _controls(summary: pd.DataFrame) -> set[str]:
    if not _usable(summary, ("strategy", "is_control")):
        return set()
    return {
        str(s)
        for s, c in zip(summary["strategy"], summary["is_control"], strict=True)
        if not _missing(c) and c
    }


# ---------------------------------------------------------------------------------------------------------------
# HTML pieces

Column = tuple[str, Callable[[pd.Series], str], bool]  # header, cell, is text (left aligned)


def _col(header: str, col: str, f: Callable[[Any], str] = fmt_auto, text: bool = False) -> Column:
    return header, (lambda r: f(_get(r, col))), text


def _table(
    rows: pd.DataFrame, columns: list[Column], caption: str | None = None, total: list[str] | None = None
):
    head = "".join(f'<th class="{"text" if t else "num"}">{_esc(h)}</th>' for h, _, t in columns)
    body = []
    for _, r in rows.iterrows():
        cells = "".join(f'<td class="{"text" if t else "num"}">{_esc(f(r))}</td>' for _, f, t in columns)
        body.append(f"<tr>{cells}</tr>")
    if total is not None:
        cells = "".join(
            f'<td class="{"text" if t else "num"}">{_esc(v)}</td>'
            for (_, _, t), v in zip(columns, total, strict=True)
        )
        body.append(f'<tr class="total">{cells}</tr>')
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _no_data(what: str) -> str:
    return f'<p class="nodata">{_esc(what)}: {NO_DATA}.</p>'


def _dl(items: Iterable[tuple[Any, Any]], cls: str = "meta") -> str:
    inner = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(fmt_text(v))}</dd>" for k, v in items)
    return f'<dl class="{cls}">{inner}</dl>'


class _Plots:
    """Draws the figures, encodes them and counts how many ``img[data-plot]`` the page holds."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def figure(
        self, name: str, alt: str, caption: str, draw: Callable[[plt.Figure], None], height: float = 3.6
    ):
        with plt.rc_context(_RC):
            fig = plt.figure(figsize=(FIGSIZE[0], height))
            try:
                draw(fig)
                fig.tight_layout()
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
            finally:
                plt.close(fig)
        self.names.append(name)
        src = base64.b64encode(buf.getvalue()).decode("ascii")
        return (
            f'<figure><img data-plot="{_esc(name)}" alt="{_esc(alt)}" src="data:image/png;base64,{src}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )


# ---------------------------------------------------------------------------------------------------------------
# sections


def _targets_section(targets: pd.DataFrame) -> str:
    title = "<h2>Documented targets against what was measured</h2>"
    if not _usable(targets, ("target",)):
        return title + _no_data("targets")

    def fmt(col):
        return lambda r: _target_formatter(_get(r, "target"))(_get(r, col))

    def interval(r):
        f = _target_formatter(_get(r, "target"))
        return _interval(_get(r, "ci_low"), _get(r, "ci_high"), f)

    columns: list[Column] = [
        _col("target", "description", fmt_text, True),
        _col("kind", "kind", fmt_text, True),
        ("documented", fmt("documented"), False),
        ("measured", fmt("measured"), False),
        ("95% interval", interval, False),
        ("verdict", _verdict, False),
        _col("definition", "definition", fmt_text, True),
    ]
    if "description" not in targets.columns:
        columns[0] = _col("target", "target", fmt_text, True)
    # up front: a target on a strategy that did not trade is no evidence either way
    caveat = "".join(
        f'<p class="caveat">Not measurable ({_esc(names)}): {_esc(why)}</p>'
        for why, names in unmeasurable(targets).items()
    )
    return title + caveat + _table(targets, columns)


def _verdict(r) -> str:
    """A target's status (met, not met, reproduced, not reproduced, not measurable), or its ``met`` from a table
    written before the status existed."""
    status = _get(r, "status")
    return fmt_text(status) if isinstance(status, str) else fmt_bool(_get(r, "met"))


_METRIC_COLUMNS = [
    ("CAGR", "cagr", lambda x: fmt_pct(x, 1, signed=True)),
    ("Sharpe", "sharpe", lambda x: fmt_num(x, 2)),
    ("Sortino", "sortino", lambda x: fmt_num(x, 2)),
    ("max DD", "max_drawdown", lambda x: fmt_pct(x, 1)),
    ("Calmar", "calmar", lambda x: fmt_num(x, 2)),
    ("5% tail", "tail_return_5", lambda x: fmt_pct(x, 2, signed=True)),
]


def _summary_section(summary: pd.DataFrame) -> str:
    title = "<h2>Strategies side by side (out of sample)</h2>"
    if not _usable(summary, ("strategy",)):
        return title + _no_data("strategy summary")

    def name(r):
        s = fmt_text(_get(r, "strategy"))
        c = _get(r, "is_control")
        return f"{s} (control)" if not _missing(c) and bool(c) else s

    def metric(col, f):
        def cell(r):
            v = f(_get(r, col))
            ci = _interval(_get(r, f"{col}_ci_low"), _get(r, f"{col}_ci_high"), f)
            return v if ci == MISSING else f"{v} {ci}"

        return cell

    columns: list[Column] = [("strategy", name, True)]
    columns += [(h, metric(c, f), False) for h, c, f in _METRIC_COLUMNS]
    columns += [
        _col("hit rate", "hit_rate", lambda x: fmt_pct(x, 1)),
        _col("turnover", "turnover", lambda x: fmt_num(x, 2)),
        _col("trades", "trades", fmt_int),
        _col("final NAV", "final_nav", fmt_money),
        _col("days", "days", fmt_int),
        _col("markets", "n_markets", fmt_int),
        _col("deflated Sharpe", "deflated_sharpe", lambda x: fmt_num(x, 3)),
        _col("SR0 (daily)", "dsr_sr0_daily", lambda x: fmt_num(x, 4)),
        _col("trials", "n_trials", fmt_int),
    ]
    note = (
        "<p>Brackets hold 95% market-clustered bootstrap intervals. The deflated Sharpe ratio is the probability "
        "that the true Sharpe ratio exceeds SR0, the best one expected by chance from that many trials (SR0 per "
        "day, not annualised).</p>"
    )
    return title + _table(summary, columns) + note


def _line_styles(strategies: list[str], controls: set[str]) -> dict[str, dict[str, Any]]:
    cmap = plt.get_cmap("tab10")
    return {
        s: {"color": cmap(i % 10), "linestyle": "--" if s in controls else "-", "linewidth": 1.3}
        for i, s in enumerate(strategies)
    }


def _daily_sections(daily: pd.DataFrame, summary: pd.DataFrame, plots: _Plots) -> str:
    out = ["<h2>Equity and drawdown</h2>"]
    if not _usable(daily, ("strategy", "day")):
        return out[0] + _no_data("daily NAV")
    daily = daily.assign(day=pd.to_datetime(daily["day"]), strategy=daily["strategy"].astype(str))
    strategies = _strategies(daily)  # in order of first appearance
    daily = daily.sort_values(["strategy", "day"], kind="stable")
    styles = _line_styles(strategies, _controls(summary))

    if "nav" in daily.columns and daily["nav"].notna().any():
        nav = pd.to_numeric(daily["nav"], errors="coerce")
        finite = nav[np.isfinite(nav)]
        log = bool(len(finite)) and bool((finite > 0).all())

        def draw_equity(fig):
            ax = fig.add_subplot()
            for s in strategies:
                g = daily[daily["strategy"] == s]
                ax.plot(g["day"], pd.to_numeric(g["nav"], errors="coerce"), label=_label(s), **styles[s])
            if log:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(ticker.FuncFormatter(_thousands))
                narrow = finite.max() / finite.min() < 10
                ax.yaxis.set_minor_formatter(
                    ticker.FuncFormatter(_thousands) if narrow else ticker.NullFormatter()
                )
            else:
                ax.yaxis.set_major_formatter(ticker.FuncFormatter(_thousands))
            _date_axis(ax)
            ax.set_ylabel("NAV (USDC)" + (", log scale" if log else ""))
            ax.set_title("Net asset value by strategy")
            ax.legend(loc="upper left", ncols=2)

        out.append(
            plots.figure(
                "equity",
                "Net asset value of every strategy over time",
                "Net asset value of every strategy over the out-of-sample days"
                + (" on a log scale" if log else "")
                + "; controls are dashed.",
                draw_equity,
            )
        )
    else:
        out.append(_no_data("NAV"))

    if "drawdown" in daily.columns and daily["drawdown"].notna().any():

        def draw_dd(fig):
            ax = fig.add_subplot()
            for s in strategies:
                g = daily[daily["strategy"] == s]
                dd = -100.0 * pd.to_numeric(g["drawdown"], errors="coerce").abs()
                ax.plot(g["day"], dd, label=_label(s), **styles[s])
            ax.set_ylabel("drawdown (%)")
            _date_axis(ax)
            ax.set_title("Drawdown from the running peak")
            ax.legend(loc="lower left", ncols=2)

        out.append(
            plots.figure(
                "drawdown",
                "Drawdown of every strategy over time",
                "Each strategy's fall from its running NAV peak, in percent (controls dashed).",
                draw_dd,
            )
        )
    else:
        out.append(_no_data("drawdown"))

    out.append("<h2>Value at Risk backtest (full)</h2>")
    full = daily[daily["strategy"] == "full"]
    if not full.empty and {"daily_return", "var"} <= set(full.columns) and full["daily_return"].notna().any():
        r = pd.to_numeric(full["daily_return"], errors="coerce").to_numpy(dtype=float)
        forecast = np.r_[np.nan, pd.to_numeric(full["var"], errors="coerce").to_numpy(dtype=float)[:-1]]
        days = full["day"].to_numpy()
        ok = np.isfinite(r) & np.isfinite(forecast)
        exc = ok & (r < forecast)
        n_exc, n_ok = int(exc.sum()), int(ok.sum())

        def draw_var(fig):
            ax = fig.add_subplot()
            ax.bar(
                days, 100 * np.where(np.isfinite(r), r, 0.0), width=1.0, color="#8c959f", label="daily return"
            )
            ax.plot(days, 100 * forecast, color="#0969da", linewidth=1.2, label="VaR forecast (day before)")
            ax.scatter(
                days[exc], 100 * r[exc], color="#cf222e", s=14, zorder=3,
                label=f"exceptions: {n_exc} of {n_ok} days",
            )  # fmt: skip
            ax.set_ylabel("daily return (%)")
            ax.set_title("Daily return of full against the VaR forecast")
            _date_axis(ax)
            ax.legend(loc="upper left", ncols=3)
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + 0.25 * (hi - lo))  # room for the legend

        out.append(
            plots.figure(
                "var",
                "Daily returns of the full strategy with the previous day's VaR forecast",
                f"Daily returns of the full strategy (bars) against the VaR forecast made the day before (line); "
                f"{n_exc} of {n_ok} days fell below it (red).",
                draw_var,
            )
        )
    else:
        out.append(_no_data("daily returns and VaR of full"))
    return "".join(out)


def _funnel_section(funnel: pd.DataFrame, plots: _Plots) -> str:
    title = "<h2>Signal funnel</h2>"
    if not _usable(funnel, ("stage", "entered")):
        return title + _no_data("funnel")
    f = funnel.reset_index(drop=True)
    entered = pd.to_numeric(f["entered"], errors="coerce").to_numpy(dtype=float)
    table = _table(
        f,
        [
            _col("stage", "stage", fmt_text, True),
            _col("entered", "entered", fmt_int),
            _col("passed", "passed", fmt_int),
            _col("pass rate", "rate", fmt_pct),
        ],
    )
    if not (np.isfinite(entered) & (entered > 0)).any():  # nothing to draw on a log scale
        return title + _no_data("signals entering the funnel") + table

    def draw(fig):
        ax = fig.add_subplot()
        y = np.arange(len(f))
        ax.barh(y, np.where(np.isfinite(entered) & (entered > 0), entered, np.nan), color="#54aeff")
        ax.set_yticks(y, [_label(s) for s in f["stage"]])
        ax.invert_yaxis()
        ax.set_xscale("log")
        for i, row in f.iterrows():
            text = f"{fmt_int(_get(row, 'entered'))} → {fmt_int(_get(row, 'passed'))} ({fmt_pct(_get(row, 'rate'))})"
            x = entered[i] if np.isfinite(entered[i]) and entered[i] > 0 else 1.0
            ax.text(x, i, " " + text, va="center", fontsize=8)
        ax.set_xlabel("signals entering the stage (log scale)")
        finite = entered[np.isfinite(entered) & (entered > 0)]
        if len(finite):
            ax.set_xlim(max(finite.min() / 3, 0.5), finite.max() * 30)
        ax.grid(axis="y", visible=False)
        ax.set_title("How many signals each stage lets through")

    fig = plots.figure(
        "funnel",
        "Signals entering each funnel stage with pass rates",
        "Signals entering each stage of the funnel (log scale), annotated with how many passed and the pass rate.",
        draw,
        height=max(2.4, 0.45 * len(f) + 1.2),
    )
    return title + fig + table


def _ic_section(ic: pd.DataFrame, plots: _Plots) -> str:
    title = "<h2>Information coefficient by month</h2>"
    if not _usable(ic, ("universe", "predictor", "month", "ic")):
        return title + _no_data("monthly IC")
    ic = ic.assign(month=pd.to_datetime(ic["month"]), ic=pd.to_numeric(ic["ic"], errors="coerce"))
    lines = [
        ("all", "wqs", "WQS, all scored wallets", {"color": "#0969da", "linewidth": 1.6}),
        ("active", "wqs", "WQS, active wallets", {"color": "#bf3989", "linewidth": 1.6}),
        ("all", "bayesian_win_rate", "Bayesian win rate, all", {"color": "#8c959f", "linewidth": 0.9}),
    ]
    series = []
    for u, p, label, style in lines:
        g = ic[(ic["universe"].astype(str) == u) & (ic["predictor"].astype(str) == p)].sort_values("month")
        if g["ic"].notna().any():
            series.append((g, label, style))
    if not series:
        return title + _no_data("monthly IC of the WQS")

    def draw(fig):
        ax = fig.add_subplot()
        for g, label, style in series:
            ax.plot(g["month"], g["ic"], marker="o", markersize=2.5, label=label, **style)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("Spearman IC")
        _date_axis(ax)
        ax.set_title("Monthly rank correlation of score and next-period outcome")
        ax.legend(loc="upper left")

    return title + plots.figure(
        "ic_by_month",
        "Monthly information coefficient of the WQS",
        "Monthly Spearman IC of the WQS for all and for active wallets, with the Bayesian win rate as a grey "
        "comparison and a zero line.",
        draw,
    )


def _wqs_hist(name: str, wqs: pd.DataFrame, what: str, plots: _Plots) -> str:
    if not _usable(wqs, ("wqs",)):
        return _no_data(what)
    v = pd.to_numeric(wqs["wqs"], errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return _no_data(what)
    as_of = ""
    if "as_of" in wqs.columns and wqs["as_of"].notna().any():
        as_of = f" as of {fmt_date(pd.to_datetime(wqs['as_of']).max())}"

    def draw(fig):
        ax = fig.add_subplot()
        ax.hist(np.clip(v, 0, 100), bins=np.arange(0, 105, 5), color="#54aeff", edgecolor="white")
        ax.axvline(60, color="#bf8700", linewidth=1.2, label="60 (universe)")
        ax.axvline(75, color="#cf222e", linewidth=1.2, label="75 (copy threshold)")
        ax.set_xlim(0, 100)
        ax.set_xlabel("WQS")
        ax.set_ylabel("wallets")
        ax.set_title(f"{len(v):,} scored wallets{as_of}")
        ax.legend(loc="upper right")

    return plots.figure(
        name,
        f"Histogram of wallet quality scores{as_of}",
        f"Distribution of the wallet quality score of {len(v):,} scored wallets{as_of}, with lines at 60 and 75.",
        draw,
    )


def _brinson_section(brinson: pd.DataFrame, plots: _Plots) -> str:
    title = "<h2>Brinson-Fachler attribution</h2>"
    parts = ("allocation", "selection", "interaction")
    if not _usable(brinson, ("category", *parts)):
        return title + _no_data("attribution")
    b = brinson.copy()
    if "portfolio" not in b.columns:
        b["portfolio"] = "portfolio"
    if "benchmark" not in b.columns:
        b["benchmark"] = "benchmark"
    pairs = list(dict.fromkeys(zip(b["portfolio"].astype(str), b["benchmark"].astype(str), strict=True)))
    plotted = next((p for p in pairs if p[0] == "full"), pairs[0])
    g = b[(b["portfolio"].astype(str) == plotted[0]) & (b["benchmark"].astype(str) == plotted[1])]
    g = g.reset_index(drop=True)
    if not g[list(parts)].apply(pd.to_numeric, errors="coerce").notna().any().any():
        return title + _no_data("attribution effects")

    def draw(fig):
        ax = fig.add_subplot()
        y = np.arange(len(g))
        h = 0.27
        colors = {"allocation": "#54aeff", "selection": "#1a7f37", "interaction": "#bf8700"}
        for k, part in enumerate(parts):
            vals = 100 * pd.to_numeric(g[part], errors="coerce").to_numpy(dtype=float)
            ax.barh(y + (k - 1) * h, vals, height=h, label=part, color=colors[part])
        ax.set_yticks(y, [_label(c) for c in g["category"]])
        ax.invert_yaxis()
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("contribution to active return (percentage points)")
        ax.set_title(f"{_label(plotted[0])} against {_label(plotted[1])}")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")

    out = [
        title,
        plots.figure(
            "attribution",
            f"Brinson-Fachler attribution of {plotted[0]} against {plotted[1]} by category",
            f"Allocation, selection and interaction effects per category of {plotted[0]} against "
            f"{plotted[1]}, in percentage points of return.",
            draw,
            height=max(2.6, 0.5 * len(g) + 1.2),
        ),
    ]
    pct2 = lambda x: fmt_pct(x, 2)  # noqa: E731
    columns = [
        _col("category", "category", fmt_text, True),
        _col("w portfolio", "wp", fmt_pct),
        _col("w benchmark", "wb", fmt_pct),
        _col("r portfolio", "rp", pct2),
        _col("r benchmark", "rb", pct2),
        _col("allocation", "allocation", pct2),
        _col("selection", "selection", pct2),
        _col("interaction", "interaction", pct2),
        _col("total", "total", pct2),
    ]
    for p, bm in pairs:
        rows = b[(b["portfolio"].astype(str) == p) & (b["benchmark"].astype(str) == bm)]

        def col_sum(c, rows=rows):
            return pd.to_numeric(rows[c], errors="coerce").sum(min_count=1) if c in rows.columns else math.nan

        def weighted(w, r, rows=rows):
            if not {w, r} <= set(rows.columns):
                return math.nan
            return (pd.to_numeric(rows[w], errors="coerce") * pd.to_numeric(rows[r], errors="coerce")).sum(
                min_count=1
            )

        total_col = (
            col_sum("total")
            if "total" in rows.columns
            else col_sum("allocation") + col_sum("selection") + col_sum("interaction")
        )
        total = [
            "total",
            fmt_pct(col_sum("wp")),
            fmt_pct(col_sum("wb")),
            pct2(weighted("wp", "rp")),
            pct2(weighted("wb", "rb")),
            pct2(col_sum("allocation")),
            pct2(col_sum("selection")),
            pct2(col_sum("interaction")),
            pct2(total_col),
        ]
        out.append(_table(rows, columns, caption=f"{p} against {bm}", total=total))
    return "".join(out)


def _contribution_section(contribution: pd.DataFrame, plots: _Plots) -> str:
    title = "<h2>Where the P&amp;L of full came from</h2>"
    if not _usable(contribution, ("strategy", "dimension", "item", "pnl")):
        return title + _no_data("P&L contribution")
    c = contribution[contribution["strategy"].astype(str) == "full"].copy()
    c["pnl"] = pd.to_numeric(c["pnl"], errors="coerce")
    cats = c[c["dimension"] == "category"].sort_values("pnl", ascending=False, kind="stable")
    costs = c[c["dimension"] == "execution"]
    bars = pd.concat([cats, costs])
    out = [title]
    if bars["pnl"].notna().any():

        def draw(fig):
            ax = fig.add_subplot()
            y = np.arange(len(bars))
            vals = bars["pnl"].to_numpy(dtype=float)
            is_cost = (bars["dimension"] == "execution").to_numpy()
            colors = np.where(is_cost, "#bf8700", np.where(vals >= 0, "#1a7f37", "#cf222e"))
            ax.barh(y, np.nan_to_num(vals), color=list(colors))
            labels = [("cost: " if k else "") + _label(i) for i, k in zip(bars["item"], is_cost, strict=True)]
            ax.set_yticks(y, labels)
            ax.invert_yaxis()
            ax.axvline(0.0, color="black", linewidth=0.8)
            ax.set_xlabel("P&L (USDC)")
            ax.grid(axis="y", visible=False)
            ax.set_title("P&L of full by market category, and execution costs")

        out.append(
            plots.figure(
                "contribution",
                "P&L of the full strategy by category and execution cost",
                "Profit and loss of the full strategy by market category (green gains, red losses) and the "
                "execution costs it paid (amber, negative).",
                draw,
                height=max(2.6, 0.32 * len(bars) + 1.2),
            )
        )
    else:
        out.append(_no_data("P&L of full by category"))
    whales = c[c["dimension"] == "whale"].sort_values("pnl", ascending=False, kind="stable").head(10)
    if whales.empty:
        out.append(_no_data("whales of full"))
    else:
        out.append(
            _table(
                whales,
                [
                    _col("whale", "item", fmt_text, True),
                    _col("P&L", "pnl", fmt_money),
                    _col("share of P&L", "share_of_pnl", fmt_pct),
                ],
                caption="Top 10 whales of full by P&L",
            )
        )
    return "".join(out)


def _table_section(title: str, frame: pd.DataFrame, key: str, what: str, columns: list) -> str:
    """A heading and a table of ``frame``, or "no data" when it lacks ``key``."""
    head = f"<h2>{_esc(title)}</h2>"
    return head + (_table(frame, columns) if _usable(frame, (key,)) else _no_data(what))


def _regression_section(regression: pd.DataFrame) -> str:
    return _table_section(
        "Alpha and beta against the benchmarks",
        regression,
        "strategy",
        "regression",
        [
            _col("strategy", "strategy", fmt_text, True),
            _col("benchmark", "benchmark", fmt_text, True),
            _col("alpha (daily)", "alpha", lambda x: fmt_pct(x, 3, signed=True)),
            _col("beta", "beta", lambda x: fmt_num(x, 2)),
            _col("R²", "r_squared", lambda x: fmt_num(x, 2)),
            _col("alpha (annualised)", "alpha_annualised", lambda x: fmt_pct(x, 1, signed=True)),
            _col("t(alpha)", "alpha_t", lambda x: fmt_num(x, 2)),
            _col("days", "n", fmt_int),
        ],
    )


def _validation_section(validation: pd.DataFrame) -> str:
    return _table_section(
        "Validation checks",
        validation,
        "check_name",
        "validation",
        [
            _col("check", "check_name", fmt_text, True),
            _col("subject", "subject", fmt_text, True),
            _col("statistic", "statistic", fmt_text, True),
            _col("value", "value", lambda x: fmt_num(x, 3)),
            _col("p-value", "p_value", fmt_p),
            _col("threshold", "threshold", lambda x: fmt_num(x, 3)),
            _col("passed", "passed", fmt_bool),
            _col("detail", "detail", fmt_text, True),
        ],
    )


def _folds_section(folds: pd.DataFrame) -> str:
    return _table_section(
        "Walk-forward folds",
        folds,
        "fold",
        "folds",
        [
            _col("fold", "fold", fmt_int),
            _col("train start", "train_start", fmt_date),
            _col("origin", "origin", fmt_date),
            _col("end", "fold_end", fmt_date),
            _col("whales", "whales", fmt_int),
            _col("random wallets", "random_wallets", fmt_int),
            _col("chosen min WQS", "chosen_min_wqs", lambda x: fmt_num(x, 0)),
            _col("in-sample Sharpe", "in_sample_sharpe", lambda x: fmt_num(x, 2)),
            _col("out-of-sample Sharpe", "out_of_sample_sharpe", lambda x: fmt_num(x, 2)),
        ],
    )


def _real_section(real: dict, plots: _Plots) -> str:
    name = fmt_text(real.get("name")) if real.get("name") is not None else "unnamed"
    out = [f'<section class="real"><h2>Real data: {_esc(name)}</h2>']
    note = real.get("note")
    if note:
        out.append(f'<p class="caveat">{_esc(note)}</p>')
    facts = real.get("facts") or {}
    if facts:
        out.append(_dl(facts.items()))
    wallets = _frame(real.get("wallets"))
    out.append("<h3>Wallets</h3>")
    if wallets.empty:
        out.append(_no_data("wallets"))
    else:
        top = wallets.head(15)
        out.append(_table(top, [_col(str(c), c, fmt_auto, top[c].dtype == object) for c in top.columns]))
    backtest = _frame(real.get("backtest"))
    if not backtest.empty:
        out.append("<h3>The walk-forward backtest on this dump</h3>")
        out.append(
            _table(
                backtest, [_col(str(c), c, fmt_auto, backtest[c].dtype == object) for c in backtest.columns]
            )
        )
    out.append("<h3>Wallet quality scores</h3>")
    out.append(_wqs_hist("real_wqs_distribution", _frame(real.get("wqs")), "real WQS", plots))
    out.append("<h3>Cumulative realised P&amp;L</h3>")
    out.append(_real_pnl(_frame(real.get("pnl")), plots))
    out.append("</section>")
    return "".join(out)


def _real_pnl(pnl: pd.DataFrame, plots: _Plots) -> str:
    if _usable(pnl, ("day", "series", "value")):
        p = pnl[["day", "series", "value"]]
    elif _usable(pnl, ("day", "pnl")):
        p = pnl.assign(series="all wallets", value=pnl["pnl"])[["day", "series", "value"]]
    else:
        return _no_data("real P&L")
    p = p.assign(day=pd.to_datetime(p["day"]), value=pd.to_numeric(p["value"], errors="coerce"))
    p = p.sort_values(["day"], kind="stable")
    if not p["value"].notna().any():
        return _no_data("real P&L")
    names = list(dict.fromkeys(p["series"].astype(str)))

    def draw(fig):
        ax = fig.add_subplot()
        cmap = plt.get_cmap("tab10")
        for i, s in enumerate(names):
            g = p[p["series"].astype(str) == s]
            ax.plot(g["day"], g["value"], label=_label(s), color=cmap(i % 10), linewidth=1.3)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_ylabel("cumulative realised P&L (USDC)")
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(_thousands))
        _date_axis(ax)
        ax.set_title("Cumulative realised P&L")
        ax.legend(loc="upper left")

    return plots.figure(
        "real_pnl",
        "Cumulative realised P&L over time, one line per series",
        "Cumulative realised profit and loss over time for " + ", ".join(names) + ".",
        draw,
    )


# ---------------------------------------------------------------------------------------------------------------
# public


def render_report(data: dict[str, pd.DataFrame], meta: dict[str, str], real: dict | None = None) -> str:
    """The whole report as one self-contained HTML page (see the module docstring)."""
    d = {k: _frame(v) for k, v in (data or {}).items()}

    def get(k: str) -> pd.DataFrame:
        return d.get(k, pd.DataFrame())

    plots = _Plots()
    sections = [
        f"<header><h1>{_esc(TITLE)}</h1>{_dl((meta or {}).items())}</header>",
        _targets_section(get("targets")),
        _summary_section(get("summary")),
        _daily_sections(get("daily"), get("summary"), plots),
        _funnel_section(get("funnel"), plots),
        _ic_section(get("ic_monthly"), plots),
        "<h2>Wallet quality scores</h2>" + _wqs_hist("wqs_distribution", get("wqs"), "WQS", plots),
        _brinson_section(get("brinson"), plots),
        _contribution_section(get("contribution"), plots),
        _regression_section(get("regression")),
        _validation_section(get("validation")),
        _folds_section(get("folds")),
    ]
    if real is not None:
        sections.append(_real_section(real, plots))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(TITLE)}</title><style>{_CSS}</style></head>\n"
        f'<body data-plots-expected="{len(plots.names)}">\n'
        + "\n".join(sections)
        + f"\n{_SCRIPT}\n</body></html>\n"
    )


def write_report(html: str, path: str | Path) -> Path:  # the argument shadows the html module here only
    """Write the page as UTF-8, creating the parent directories; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html, encoding="utf-8")
    return p


def _md(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def summary_markdown(data: dict[str, pd.DataFrame]) -> str:
    """The targets and the strategy table in markdown, for a materialisation's metadata."""
    targets, summary = _frame((data or {}).get("targets")), _frame((data or {}).get("summary"))
    out = ["**Documented targets against what was measured**", ""]
    if _usable(targets, ("target",)):
        out += ["| target | documented | measured | 95% interval | verdict |", "|---|---|---|---|---|"]
        for _, r in targets.iterrows():
            f = _target_formatter(_get(r, "target"))
            ci = _interval(_get(r, "ci_low"), _get(r, "ci_high"), f)
            out.append(
                f"| {_md(fmt_text(_get(r, 'target')))} | {f(_get(r, 'documented'))} | {f(_get(r, 'measured'))} "
                f"| {ci} | {_verdict(r)} |"
            )
    else:
        out.append("no targets")
    out += ["", "**Strategies**", ""]
    if _usable(summary, ("strategy",)):
        out += [
            "| strategy | CAGR | Sharpe [95% CI] | max DD | trades | final NAV |",
            "|---|---|---|---|---|---|",
        ]
        two = lambda x: fmt_num(x, 2)  # noqa: E731
        for _, r in summary.iterrows():
            name = fmt_text(_get(r, "strategy"))
            c = _get(r, "is_control")
            if not _missing(c) and bool(c):
                name += " (control)"
            ci = _interval(_get(r, "sharpe_ci_low"), _get(r, "sharpe_ci_high"), two)
            out.append(
                f"| {_md(name)} | {fmt_pct(_get(r, 'cagr'), 1, signed=True)} | {two(_get(r, 'sharpe'))} {ci} "
                f"| {fmt_pct(_get(r, 'max_drawdown'))} | {fmt_int(_get(r, 'trades'))} "
                f"| {fmt_money(_get(r, 'final_nav'))} |"
            )
    else:
        out.append("no strategy ran")
    return "\n".join(out)
