"""Risk kernels against the published PerformanceAnalytics values (52 VaR numbers for the EDHEC indices)."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.risk import model as risk

REF = Path(__file__).resolve().parents[1] / "fixtures" / "reference_data"
EDHEC = pd.read_csv(REF / "edhec_PerformanceAnalytics.csv", index_col="date")
VECTORS = json.loads((REF / "edhec_var_vectors.json").read_text())["columns"]
FUNCTIONS = {
    "mVaR95": lambda r: risk.modified_var(r, 0.95),
    "mVaR99": lambda r: risk.modified_var(r, 0.99),
    "gVaR95": lambda r: risk.gaussian_var(r, 0.95),
    "hVaR95": lambda r: risk.historical_var(r, 0.95),
}
CASES = [(index, measure) for index in VECTORS for measure in FUNCTIONS]


def _truncate4(x: float) -> float:
    """PerformanceAnalytics' printed values are truncated (not rounded) to 4 decimals."""
    return math.trunc(x * 1e4) / 1e4


def test_the_reference_holds_52_values():
    assert len(CASES) == 52 and len(EDHEC) == 293


@pytest.mark.parametrize(("index", "measure"), CASES)
def test_var_reproduces_the_published_performanceanalytics_value(index, measure):
    got = FUNCTIONS[measure](EDHEC[index].to_numpy())
    printed = VECTORS[index]["PA_printed"][measure]
    assert _truncate4(got) == pytest.approx(printed, abs=1e-12), f"{index} {measure}: {got} prints {printed}"
    full = VECTORS[index][measure if measure != "hVaR95" else "hVaR95_type7"]
    assert got == pytest.approx(full, rel=1e-10)


def test_moments_match_the_reference():
    for index, v in VECTORS.items():
        m = risk.population_moments(EDHEC[index].to_numpy())
        assert (m.mean, m.sigma, m.skew, m.excess_kurtosis) == pytest.approx(
            (v["mean"], v["sd_pop"], v["skew_pop"], v["exkurt_pop"]), rel=1e-10
        )


def test_cornish_fisher_is_gaussian_without_skew_or_kurtosis_and_capped_at_total_loss():
    assert risk.cornish_fisher_z(0.95, 0.0, 0.0) == pytest.approx(-1.6448536269514722)
    symmetric = np.array([-0.02, -0.01, 0.0, 0.01, 0.02] * 20)
    assert risk.modified_var(symmetric) < 0
    wild = np.array([0.5] * 50 + [-0.99, 2.0])
    assert risk.modified_var(wild, 0.99) >= -1.0
    assert math.isnan(risk.modified_var([0.01]))
    assert risk.modified_var([0.01, 0.01, 0.01]) == pytest.approx(0.01)  # no variance: the mean


# ------------------------------------------------------------------------------------------ whale quarantine


def test_strikes_on_each_documented_threshold():
    got = risk.strikes([0.4, 1.0, 1.0, 1.0, np.nan], [0.1, 0.31, 0.1, 0.1, np.nan], [50, 50, 4.9, 50, np.nan])
    assert got.tolist() == [True, True, True, False, False]


def test_strike_reasons_name_each_threshold_crossed_and_agree_with_strikes():
    # each threshold exactly (no strike), just past it (a strike), all three at once, and NaN (none)
    sharpe = [0.5, 0.49, 1.0, 1.0, 1.0, 1.0, 0.1, np.nan]
    drawdown = [0.1, 0.1, 0.30, 0.31, 0.1, 0.1, 0.9, np.nan]
    consistency = [50, 50, 50, 50, 5.0, 4.9, 1.0, np.nan]
    got = risk.strike_reasons(sharpe, drawdown, consistency)
    assert got.tolist() == ["", "Sharpe < 0.5", "", "current drawdown > 30%", "", "consistency < 5",
                            "Sharpe < 0.5; current drawdown > 30%; consistency < 5", ""]  # fmt: skip
    assert (got != "").tolist() == risk.strikes(sharpe, drawdown, consistency).tolist()


def test_three_strikes_quarantine_for_30_days_then_release_clears_them():
    days = np.arange(0, 140, 7)  # weekly evaluations
    s = np.zeros((3, days.size), dtype=bool)
    s[0, [1, 2, 3]] = True  # three strikes in a row: quarantined at day 21 until day 51
    s[0, [4, 5]] = True  # strikes while quarantined do not count
    s[0, [8]] = True  # after release (day 56 is the first evaluation >= 51) strikes start from zero
    s[1, [0, 14, 15]] = True  # three strikes, but the first is more than 90 days before the third
    s[2, [0, 1]] = True  # two strikes: never quarantined
    q = risk.quarantine(s, days)
    assert q.quarantined[0].tolist() == [d in (21, 28, 35, 42, 49) for d in days]
    assert q.released_day[0, 3] == 51 and np.isnan(q.released_day[0, 8])
    assert q.strikes[0, 8] == 1 and not q.strike[0, 4]
    assert not q.quarantined[1].any() and q.strikes[1, 15] == 2
    assert not q.quarantined[2].any()


def test_the_rule_carried_across_any_cut_gives_the_arrays_of_one_run():
    """Two runs, the second from the first's ``carry``, are one run to the bit, whatever date they are cut at:
    a cut on a quarantine's start, on the date it ends (day 51 + 5 = 56 is an evaluation date here), and between
    a strike and the one exactly ``window_days`` later (which does not count it)."""
    days = np.array([0, 7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 90, 97, 104, 180, 187])
    rng = np.random.default_rng(3)
    s = rng.random((40, days.size)) < 0.35
    s[0] = False
    s[0, [1, 2, 3]] = True  # quarantined at 21 (until 51 + ... ), released at the first date >= its end
    s[1] = False
    s[1, [0, 11, 12]] = True  # day 0 and day 90: exactly the window apart, so day 0 no longer counts at 90
    one = risk.quarantine(s, days, quarantine_days=35)  # ends at 56, an evaluation date
    assert one.quarantined[0, 3] and not one.quarantined[0, 8] and one.released_day[0, 7] == 56
    assert one.strikes[1, 12] == 2 and not one.quarantined[1].any()
    for cut in range(days.size + 1):
        a = risk.quarantine(s[:, :cut], days[:cut], quarantine_days=35)
        b = risk.quarantine(s[:, cut:], days[cut:], quarantine_days=35, carry=a.carry)
        for field in ("strike", "strikes", "quarantined", "released_day"):
            joined = np.concatenate([getattr(a, field), getattr(b, field)], axis=1)
            np.testing.assert_array_equal(joined, getattr(one, field), err_msg=f"{field}, cut {cut}")
        np.testing.assert_array_equal(b.carry.recent, one.carry.recent)
        np.testing.assert_array_equal(b.carry.until, one.carry.until)
    with pytest.raises(ValueError, match="carry is for 40 wallets"):
        risk.quarantine(s[:3], days, carry=one.carry)


# ------------------------------------------------------------------------------------------- stops and exits


def test_average_true_range_follows_wilder():
    p = np.array([[0.50, 0.52, 0.51, np.nan, 0.55]])
    moves = [0.02, 0.02, 0.01, 0.0, 0.04]
    atr = [moves[0]]
    for m_ in moves[1:]:
        atr.append(atr[-1] + (m_ - atr[-1]) / 14)
    np.testing.assert_allclose(risk.average_true_range(p)[0], atr, rtol=1e-12)


def test_trailing_stop_waits_for_plus_five_percent_then_ratchets_and_exits():
    # entry 0.50; never reaches 0.525 -> never trails, even through a fall
    flat = [0.50, 0.51, 0.45, 0.40, 0.52]
    # rises to 0.60 (active), ratchets, then falls through the level
    run = [0.50, 0.53, 0.56, 0.60, 0.61, 0.60, 0.40, 0.30]
    prices = np.array([flat + [np.nan] * 3, run])
    out = risk.trailing_stops(prices, np.array([0.50, 0.50]))
    assert out.exit_day[0] == -1 and np.isnan(out.stop[0]).all()
    assert out.exit_day[1] == 6 and out.exit_price[1] == pytest.approx(0.40)
    level = out.stop[1]
    assert np.isnan(level[0]) and (np.diff(level[1:6]) >= -1e-15).all()  # only ratchets up
    atr = risk.average_true_range(prices[1:])[0]
    assert level[4] == pytest.approx(max(p - 2.5 * a for p, a in zip(run[1:5], atr[1:5], strict=True)))


prices_walk = st.lists(st.one_of(st.floats(0.01, 0.99), st.just(float("nan"))), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(walk=prices_walk, entry=st.floats(0.05, 0.95))
def test_the_day_by_day_stop_exits_on_the_day_the_vectorised_one_does(walk, entry):
    """The paper book and the live loop advance a stop a day at a time; it must hit on the same day as
    ``trailing_stops`` over the whole series (the marks it sees are carried forward, NaN only before the first)."""
    p = risk.carry_forward(np.array([walk]))[0]
    expected = int(risk.trailing_stops(p[None, :], np.array([entry])).exit_day[0])
    stop = risk.TrailingStop(entry)
    hits = [j for j, x in enumerate(p) if stop.update(x)]
    assert (hits[0] if hits else -1) == expected


def test_the_day_by_day_stop_on_the_documented_example():
    run = [0.50, 0.53, 0.56, 0.60, 0.61, 0.60, 0.40, 0.30]
    stop = risk.TrailingStop(0.50)
    assert [stop.update(x) for x in run] == [False] * 6 + [True, True]
    flat = risk.TrailingStop(0.50)
    assert not any(flat.update(x) for x in [0.50, 0.51, 0.45, 0.40, 0.52])  # never 5% up: never trails


def test_time_exit_24_hours_before_resolution():
    end = 1_800_000_000
    assert risk.time_exit_due([end - 86_401, end - 86_400, end + 5], end).tolist() == [False, True, True]


# ------------------------------------------------------------------------------------------------------ alerts


def test_alerts_post_one_slack_style_message_and_survive_a_failing_webhook():
    import httpx

    from assets.risk.alerts import MAX_LINES, AlertsResource

    seen = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200)

    alerts = [{"day": 20_000 + i, "kind": "var_breach", "message": f"VaR {i}"} for i in range(25)]

    class Log:
        warnings: list = []

        def warning(self, msg):
            self.warnings.append(msg)

    res = AlertsResource(webhook_url="http://hooks.test/x")
    assert res.send(alerts, Log(), transport=httpx.MockTransport(ok)) == 25
    (body,) = seen
    assert body["text"].startswith("whalecopy alerts:") and body["text"].count("[var_breach]") == MAX_LINES
    assert body["text"].endswith("... and 5 more")
    log = Log()
    down = httpx.MockTransport(lambda r: httpx.Response(503))
    assert res.send(alerts, log, transport=down) == 0 and "hooks.test" in log.warnings[0]
    assert AlertsResource().send(alerts, Log()) == 0  # no webhook configured: nothing sent


def test_an_alert_is_posted_once_however_many_runs_find_it():
    """Each run's book finds every alert of the history again: what became of each at the webhook is carried by
    its day, kind and message (the n-th of several alike by the n-th), and only an alert no run found before is
    posted; a first run posts its last day's alerts only."""
    import pandas as pd

    now = pd.Timestamp("2026-12-07 10:00", tz="UTC")
    found = pd.DataFrame({"day": [10, 11, 11, 12], "kind": ["time_exit", "trailing_stop", "trailing_stop", "var_breach"],
                          "message": ["a", "b", "b", "c"]})  # fmt: skip

    first = risk.alert_deliveries(found, None, now, last_day=12, webhook=True)
    assert first["delivery"].tolist() == [risk.HISTORY] * 3 + [risk.PENDING]  # the last day's alone (day 12)
    assert (first["found_at"] == now).all() and first["posted_at"].isna().all()
    assert (
        risk.alert_deliveries(found, None, now, last_day=13, webhook=True)["delivery"].eq(risk.HISTORY).all()
    )
    no_hook = risk.alert_deliveries(found, None, now, last_day=12, webhook=False)
    assert no_hook["delivery"].tolist() == [risk.HISTORY] * 3 + [risk.NO_WEBHOOK]

    stored = first.copy()
    stored.loc[3, ["delivery", "posted_at"]] = [risk.POSTED, now]
    later = now + pd.Timedelta(days=1)
    # the next run finds them again, a third alike one on day 11 and a late alert dated day 10
    again = pd.concat([found.iloc[:1], pd.DataFrame({"day": [10], "kind": ["time_exit"], "message": ["d"]}),
                       found.iloc[1:3], found.iloc[1:2], found.iloc[3:]], ignore_index=True)  # fmt: skip
    out = risk.alert_deliveries(again, stored, later, last_day=13, webhook=True)
    assert out["message"].tolist() == ["a", "d", "b", "b", "b", "c"]
    assert out["delivery"].tolist() == [risk.HISTORY, risk.PENDING, risk.HISTORY, risk.HISTORY, risk.PENDING,
                                        risk.POSTED]  # fmt: skip
    assert out["found_at"].tolist() == [now, later, now, now, later, now]
    assert out["posted_at"].notna().tolist() == [False] * 5 + [True]
    # a pending one (the webhook failed) stays pending until a run posts it; none found again is new
    retry = risk.alert_deliveries(again, out, later + pd.Timedelta(days=1), last_day=13, webhook=True)
    assert retry.equals(out)
    assert risk.alert_deliveries(found.iloc[:0], None, now, 12, True).empty
