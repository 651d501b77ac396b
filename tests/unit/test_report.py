"""The HTML evaluation report: every plot once as a decodable PNG with a caption, tables, escaping, empty frames,
the optional real-data section and byte-stable output."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from assets.evaluate import report
from tests.report_data import PLOTS, REAL_PLOTS, build_data, build_meta, build_real

PNG = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert(1)</script>"


class Page(HTMLParser):
    """The parts of the page the tests look at: body attributes, plot images with their captions, scripts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str] = {}
        self.imgs: list[dict[str, str]] = []
        self.captions: list[str] = []
        self.scripts = 0
        self._in_caption = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "figcaption":
            self._in_caption = True
            self.captions.append("")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


@pytest.fixture(scope="module")
def full_html() -> str:
    return report.render_report(build_data(), build_meta(), build_real())


def _plot_names(text: str) -> list[str]:
    return [i["data-plot"] for i in Page(text).imgs if "data-plot" in i]


def test_every_plot_appears_exactly_once(full_html):
    names = _plot_names(full_html)
    assert sorted(names) == sorted(PLOTS + REAL_PLOTS)
    for n in PLOTS + REAL_PLOTS:
        assert full_html.count(f'data-plot="{n}"') == 1, n


def test_every_image_is_an_embedded_png_with_alt_and_caption(full_html):
    page = Page(full_html)
    assert len(page.imgs) == len(PLOTS + REAL_PLOTS)
    for img in page.imgs:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix) :], validate=True).startswith(PNG)
        assert img["alt"].strip()
    assert len(page.captions) == len(page.imgs)
    assert all(c.strip().endswith(".") and len(c) > 20 for c in page.captions)
    # self-contained: nothing is fetched from elsewhere
    assert not re.search(r'(src|href)="(https?:)?//', full_html)
    assert len(full_html.encode()) < 2_000_000


def test_body_declares_the_expected_plots_and_the_counting_script(full_html):
    page = Page(full_html)
    assert page.body["data-plots-expected"] == str(len(page.imgs))
    assert page.scripts == 1
    tail = full_html[full_html.rindex("<script>") :]
    assert "plotsRendered" in tail and "naturalWidth" in tail and tail.rstrip().endswith("</body></html>")


def test_targets_table_comes_first_and_is_formatted(full_html):
    title = full_html.index("Documented targets against what was measured")
    assert title < full_html.index("<img") and title < full_html.index("Strategies side by side")
    table = full_html[title : full_html.index("</table>", title)]
    rows = {r.split("</td>")[0].split(">")[-1]: r for r in table.split("<tr>")[2:]}
    sharpe = rows["Sharpe ratio of the full strategy"]
    assert ">2.07<" in sharpe and ">1.23<" in sharpe and "[0.50, 1.90]" in sharpe and ">✘<" in sharpe
    drawdown = rows["max drawdown of the full strategy"]
    assert (
        ">11.2%<" in drawdown and ">8.8%<" in drawdown and "[5.0%, 15.0%]" in drawdown and ">✔<" in drawdown
    )
    assert ">60.0%<" in rows["less tail risk than naive copying"]


def test_missing_values_print_as_a_dash(full_html):
    title = full_html.index("Documented targets against what was measured")
    table = full_html[title : full_html.index("</table>", title)]
    share = next(r for r in table.split("<tr>") if "share of alpha from whale selection" in r)
    # measured, interval and met are all missing
    assert share.count('<td class="num">–</td>') == 3
    naive = next(r for r in full_html.split("<tr>") if r.startswith('<td class="text">naive_copy</td>'))
    assert naive.count('<td class="num">– [') == 1  # its Calmar ratio is NaN in the synthetic summary
    overfitting = next(r for r in full_html.split("<tr>") if "oos / is Sharpe" in r)
    assert '<td class="num">–</td><td class="text">–</td></tr>' in overfitting  # passed, detail
    running = next(
        r for r in full_html.split("<tr>") if r.startswith('<td class="num">2</td><td class="num">2023')
    )
    assert running.count(">–<") == 1  # the fold's end
    assert not re.search(r">\s*(nan|NaN|None|NaT)\b", full_html)


def test_strings_from_the_data_are_escaped():
    data = build_data(strategies=("naive_copy", "full", EVIL))
    data["validation"].loc[0, "detail"] = "a & b"
    text = report.render_report(data, {"source": EVIL}, build_real(wallet_name=EVIL))
    assert EVIL not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "a &amp; b" in text
    assert Page(text).scripts == 1  # only the report's own plot-counting script


def test_dollar_signs_in_labels_do_not_break_the_plots():
    data = build_data()
    data["contribution"].loc[data["contribution"]["item"] == "politics", "item"] = "$politics$ {_^"
    data["daily"]["strategy"] = data["daily"]["strategy"].replace("full", "_full")
    text = report.render_report(data, {})
    assert "contribution" in _plot_names(text)


def test_empty_frames_say_no_data_and_draw_nothing():
    empty = {k: pd.DataFrame() for k in build_data()}
    for data in (empty, {}):
        text = report.render_report(data, {})
        page = Page(text)
        assert page.imgs == []
        assert page.body["data-plots-expected"] == "0"
        assert text.count("no data") >= 8
        assert "Documented targets against what was measured" in text


def test_some_empty_frames_drop_only_their_plots():
    data = build_data()
    data["daily"] = data["daily"].iloc[0:0]
    data["funnel"] = pd.DataFrame(columns=["stage", "entered", "passed", "rate"])
    data["ic_monthly"] = data["ic_monthly"][data["ic_monthly"]["predictor"] == "pnl"]  # no WQS line to draw
    text = report.render_report(data, build_meta())
    page = Page(text)
    names = _plot_names(text)
    assert sorted(names) == sorted(set(PLOTS) - {"equity", "drawdown", "var", "funnel", "ic_by_month"})
    assert page.body["data-plots-expected"] == str(len(page.imgs)) == str(len(names))
    assert "daily NAV: no data" in text and "funnel: no data" in text


def test_degenerate_frames_do_not_crash():
    data = build_data()
    data["funnel"] = pd.DataFrame(
        {"stage": ["whale", "trade"], "entered": [0, 0], "passed": [0, 0], "rate": np.nan}
    )
    data["brinson"][["allocation", "selection", "interaction"]] = np.nan
    data["wqs"]["wqs"] = np.nan
    data["summary"]["is_control"] = pd.array([True, None, False, True, None], dtype="boolean")
    text = report.render_report(data, {"missing": None})
    names = _plot_names(text)
    assert sorted(names) == sorted(set(PLOTS) - {"funnel", "attribution", "wqs_distribution"})
    assert "signals entering the funnel: no data" in text and "<dd>–</dd>" in text


def test_var_plot_needs_the_full_strategy_and_counts_exceptions():
    data = build_data()
    full = data["daily"][data["daily"]["strategy"] == "full"].sort_values("day")
    r, var = full["daily_return"].to_numpy(), full["var"].to_numpy()
    exceptions = int((r[1:] < var[:-1]).sum())
    assert exceptions > 0
    page = Page(report.render_report(data, {}))
    var_caption = page.captions[[i["data-plot"] for i in page.imgs].index("var")]
    assert f"{exceptions} of {len(r) - 1} days" in var_caption

    no_full = build_data(strategies=("naive_copy", "fixed_size"))
    names = _plot_names(report.render_report(no_full, {}))
    assert "var" not in names and "equity" in names


def test_top_ten_whales_of_full_in_order():
    data = build_data()
    text = report.render_report(data, {})
    c = data["contribution"]
    whales = c[(c["strategy"] == "full") & (c["dimension"] == "whale")].sort_values("pnl", ascending=False)
    table = text[text.index("Top 10 whales of full by P&amp;L") :]
    table = table[: table.index("</table>")]
    positions = [table.find(f">{w}<") for w in whales["item"]]
    assert all(p > 0 for p in positions[:10]) and positions[:10] == sorted(positions[:10])
    assert all(p == -1 for p in positions[10:])


def test_attribution_table_has_a_totals_row():
    data = build_data()
    text = report.render_report(data, {})
    b = data["brinson"]
    total = text[text.index('<tr class="total">') :]
    total = total[: total.index("</tr>")]
    assert f">{b['selection'].sum():.2%}<" in total and f">{b['total'].sum():.2%}<" in total
    assert f">{(b['wp'] * b['rp']).sum():.2%}<" in total


def test_real_section_only_when_given():
    data, meta = build_data(), build_meta()
    without = report.render_report(data, meta)
    assert "Real data" not in without and not set(REAL_PLOTS) & set(_plot_names(without))

    real = build_real()
    text = report.render_report(data, meta, real)
    assert "Real data: US midterms 2022" in text
    assert 'class="caveat">Real trades of one event only' in text
    assert "<dt>trades</dt><dd>123456</dd>" in text
    assert text.index("Real data") < text.index('data-plot="real_wqs_distribution"')
    wallets = real["wallets"]["wallet"]
    assert all(f">{w}<" in text for w in wallets[:15]) and not any(f">{w}<" in text for w in wallets[15:])

    sparse = report.render_report(data, meta, {"name": "sparse", "pnl": pd.DataFrame()})
    assert "Real data: sparse" in sparse and "real P&amp;L: no data" in sparse
    assert sorted(_plot_names(sparse)) == sorted(PLOTS)


def test_real_pnl_accepts_a_single_pnl_column():
    days = pd.date_range("2022-10-01", periods=10).date
    real = {"name": "x", "pnl": pd.DataFrame({"day": days, "pnl": np.arange(10.0)})}
    assert "real_pnl" in _plot_names(report.render_report({}, {}, real))


def test_output_is_deterministic_and_leaves_no_figures_open():
    plt.close("all")
    a = report.render_report(build_data(), build_meta(), build_real())
    b = report.render_report(build_data(), build_meta(), build_real())
    assert a == b
    assert plt.get_fignums() == []
    other = report.render_report(
        build_data(), build_meta() | {"generated_at": "2030-01-01T00:00:00"}, build_real()
    )
    assert other != a and other.replace("2030-01-01T00:00:00", build_meta()["generated_at"]) == a
    changed = build_data()
    changed["wqs"].loc[0, "wqs"] = 99.0
    assert report.render_report(changed, build_meta(), build_real()) != a


def test_write_report_creates_directories(tmp_path, full_html):
    path = report.write_report(full_html, tmp_path / "a" / "b" / "report.html")
    assert path.exists() and path.read_text(encoding="utf-8") == full_html


def test_summary_markdown_has_both_tables():
    md = report.summary_markdown(build_data())
    assert "| sharpe_full | 2.07 | 1.23 | [0.50, 1.90] | ✘ |" in md
    assert "| alpha_from_selection | 74.0% | – | – | – |" in md
    assert "| random_whales (control) |" in md
    assert sum(line.startswith("| ") for line in md.splitlines()) == (1 + 4) + (1 + 5)
    assert md.index("Documented targets") < md.index("Strategies")
    empty = report.summary_markdown({})
    assert "no targets" in empty and "no strategy ran" in empty


def test_a_target_not_measurable_is_said_before_the_table_with_its_reason():
    data = build_data()
    t = data["targets"].assign(status="met", reason=None)
    t.loc[0, ["status", "met", "reason"]] = [
        "not measurable",
        None,
        "`full` made 0 trades (a target needs 20): x",
    ]
    html = report.render_report({**data, "targets": t}, build_meta())
    title = html.index("Documented targets against what was measured")
    caveat = html.index("Not measurable (")
    assert title < caveat < html.index("<table", title)
    assert "`full` made 0 trades (a target needs 20): x" in html[caveat : html.index("</p>", caveat)]
    row = html[html.index("<table", title) : html.index("</table>", title)].split("<tr>")[2]
    assert ">not measurable<" in row
