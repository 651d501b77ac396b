"""Point-in-time scoring: as-of kernels, the as-of grid, interval sums and the score history."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from assets.score import model as m

NAN = np.nan


def _returns(seed: int = 0, wallets: int = 6, days: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.002, 0.03, (wallets, days))
    r[0, :40] = NAN  # a wallet that starts late
    r[1, 70:75] = NAN  # a NULL stretch
    r[2, :] = 0.0  # never any return
    r[3, 100:] = NAN  # a wallet that stops
    return r


ENDS = [0, 1, 2, 31, 75, 100, 159, 160]


def test_sharpe_as_of_is_the_whole_history_sharpe_of_the_truncated_series():
    r = _returns()
    got = m.sharpe_as_of(r, ENDS)
    for i, e in enumerate(ENDS):
        np.testing.assert_allclose(got[:, i], m.annualised_sharpe(r[:, :e]), rtol=1e-10, equal_nan=True)


def test_drawdown_metrics_as_of_match_the_truncated_series():
    r = _returns(1)
    mdd, ar, cal = m.drawdown_metrics_as_of(r, ENDS)
    for i, e in enumerate(ENDS):
        np.testing.assert_allclose(mdd[:, i], m.max_drawdown(r[:, :e]), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(ar[:, i], m.annual_return(r[:, :e]), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(cal[:, i], m.calmar(r[:, :e]), rtol=1e-10, equal_nan=True)


def test_consistency_as_of_matches_the_truncated_series():
    roll = m.rolling_sharpe(_returns(2), 30)
    got = m.consistency_as_of(roll, ENDS)
    for i, e in enumerate(ENDS):
        np.testing.assert_allclose(got[:, i], m.consistency_score(roll[:, :e]), rtol=1e-10, equal_nan=True)


def test_rolling_sharpe_at_t_reads_no_later_day():
    r = _returns(3)
    changed = r.copy()
    changed[:, 90:] = np.random.default_rng(9).normal(0.5, 0.2, changed[:, 90:].shape)
    a, b = m.rolling_sharpes(r), m.rolling_sharpes(changed)
    for w in m.ROLLING_WINDOWS:
        np.testing.assert_array_equal(a[w][:, :90], b[w][:, :90])


def test_near_constant_returns_count_as_zero_variance():
    r = np.full(30, -1e-4) + np.random.default_rng(0).normal(0, 1e-15, 30)
    assert np.isnan(m.annualised_sharpe(r))
    assert np.isnan(m.rolling_sharpe(r, 7)).all()


def test_as_of_ends_outside_the_days_are_rejected():
    with pytest.raises(ValueError, match="0..5"):
        m.sharpe_as_of(np.zeros((1, 5)), [6])


def test_as_of_dates_weekly_on_mondays_and_the_day_after_the_data():
    dates = m.as_of_dates(date(2024, 11, 1), date(2024, 12, 1), 7)  # data Friday 1 Nov .. Sunday 1 Dec
    assert dates[0] == date(2024, 11, 4) and all(d.weekday() == 0 for d in dates[:-1])
    assert dates[-1] == date(2024, 12, 2)  # a Monday, also the day after the last data day
    assert m.as_of_dates(date(2024, 11, 1), date(2024, 12, 3), 7)[-1] == date(2024, 12, 4)
    daily = m.as_of_dates(date(2024, 11, 1), date(2024, 11, 5), 1)
    assert daily == [date(2024, 11, d) for d in range(2, 7)]
    assert m.as_of_dates(date(2024, 11, 1), date(2024, 11, 1), 7) == [date(2024, 11, 2)]
    with pytest.raises(ValueError):
        m.as_of_dates(date(2024, 11, 1), date(2024, 11, 5), 0)


def test_interval_sums_against_a_loop():
    rng = np.random.default_rng(4)
    g, lo, hi = rng.integers(0, 5, 300), rng.integers(-2, 12, 300), rng.integers(-2, 12, 300)
    w = rng.normal(size=300)
    got = m.interval_sums(g, lo, hi, 5, 10, w)
    want = np.zeros((5, 10))
    for gi, a, b, wi in zip(g, lo, hi, w, strict=True):
        for k in range(max(a, 0), min(b, 10)):
            want[gi, k] += wi
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_edge_posterior_from_sufficient_statistics_matches_the_long_form():
    rng = np.random.default_rng(5)
    price = rng.uniform(0.1, 0.9, 400)
    won = (rng.uniform(size=400) < price + 0.05).astype(float)
    groups = rng.integers(0, 4, 400)
    long = m.price_calibrated_edge(won, price, groups, 4)
    stat = [
        np.bincount(groups, weights=x, minlength=4) for x in (np.ones(400), won, price, price * (1 - price))
    ]
    short = m.edge_posterior(*stat)
    for a, b in zip(long, short, strict=True):
        np.testing.assert_allclose(a, b)


# ---------------------------------------------------------------------------------------------------------------
# score_history on a small synthetic market
# ---------------------------------------------------------------------------------------------------------------

START = date(2025, 1, 1)
DAYS = 200


def _world(seed: int = 0, wallets: int = 40):
    """Long frames shaped like the warehouse reads: returns, activity and resolved positions."""
    rng = np.random.default_rng(seed)
    names = [f"0x{i:040x}" for i in range(wallets)]
    first = rng.integers(0, 60, wallets)
    rows = [(names[w], START + timedelta(days=int(d))) for w in range(wallets) for d in range(first[w], DAYS)]
    ret = pd.DataFrame(rows, columns=["wallet", "day"])
    skill = np.repeat(rng.normal(0, 0.01, wallets), DAYS - first)
    ret["daily_return"] = rng.normal(0.001, 0.03, len(ret)) + skill
    ret.loc[rng.uniform(size=len(ret)) < 0.02, "daily_return"] = NAN  # pnl_without_capital days
    ret["pnl_net"] = np.nan_to_num(ret["daily_return"]) * 1000
    act = ret[rng.uniform(size=len(ret)) < 0.4][["wallet", "day"]].copy()
    act["volume"] = rng.lognormal(5, 1, len(act))
    act["volume_sq"] = act["volume"] ** 2 * rng.uniform(0.2, 1.0, len(act))
    n_pos = 3000
    epoch0 = (START - date(1970, 1, 1)).days * 86400
    pos = pd.DataFrame(
        {
            "wallet": np.array(names)[rng.integers(0, wallets, n_pos)],
            "category": rng.choice(["Politics", "Crypto", "Sports", "Weather", None], n_pos),
            "resolved_ts": epoch0 + rng.uniform(0, DAYS * 86400, n_pos),
            "cut_ts": NAN,
            "price_paid": rng.uniform(0.05, 0.95, n_pos),
        }
    )
    pos["payout"] = (rng.uniform(size=n_pos) < pos["price_paid"] + 0.03).astype(float)
    pos["won"] = pos["payout"]
    cut = rng.uniform(size=n_pos) < 0.02
    pos.loc[cut, "cut_ts"] = pos.loc[cut, "resolved_ts"] + rng.uniform(-20, 20, cut.sum()) * 86400
    return ret, act, pos


def _as_of(*offsets: int) -> list[date]:
    return [START + timedelta(days=o) for o in offsets]


def test_score_history_rows_and_invariants():
    ret, act, pos = _world()
    dates = _as_of(30, 90, 150, DAYS)
    h = m.score_history(ret, act, pos, dates)
    assert list(h.columns) == m.HISTORY_COLUMNS
    assert not h.duplicated(["as_of", "wallet"]).any()
    scored = h["wqs"].notna()
    assert scored.any() and (~scored).any()
    assert (h.loc[~scored, "reason"].notna()).all() and h.loc[scored, "reason"].isna().all()
    assert h["rank"].isna().equals(~scored)
    for _, g in h.groupby("as_of"):
        order = g.sort_values("rank", na_position="last")
        assert (order["wqs"].iloc[: order["wqs"].notna().sum()].diff().dropna() <= 0).all()
        if g["wqs"].notna().any():
            assert g["rank"].min() == 1 and g.loc[g["rank"] == 1, "wqs"].notna().all()
    numeric = h.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numeric).any()
    assert h["wqs"].dropna().between(0, 100).all()
    assert (h["win_rate_lower"] <= h["win_rate_mean"]).all() and (
        h["win_rate_mean"] <= h["win_rate_upper"]
    ).all()


def test_score_history_counts_against_a_direct_recompute():
    ret, act, pos = _world(1)
    t = _as_of(120)[0]
    h = m.score_history(ret, act, pos, [t]).set_index("wallet")
    t_ts = (t - date(1970, 1, 1)).days * 86400
    live = pos[(pos["resolved_ts"] < t_ts) & ~(pos["cut_ts"] < t_ts)]
    n = live.groupby("wallet").size().reindex(h.index, fill_value=0)
    wins = live.groupby("wallet")["won"].sum().reindex(h.index, fill_value=0)
    np.testing.assert_array_equal(h["n_resolved_positions"], n)
    np.testing.assert_array_equal(h["wins"], wins)
    before = act[pd.to_datetime(act["day"]) < pd.Timestamp(t)]
    vol = before.groupby("wallet")["volume"].sum().reindex(h.index, fill_value=0)
    np.testing.assert_allclose(h["volume"], vol, rtol=1e-12)
    days = ret[(pd.to_datetime(ret["day"]) < pd.Timestamp(t)) & ret["daily_return"].notna()]
    np.testing.assert_array_equal(
        h["n_return_days"], days.groupby("wallet").size().reindex(h.index, fill_value=0)
    )


def test_changing_anything_at_or_after_as_of_leaves_every_score_at_as_of_unchanged():
    """The point-in-time property: outcomes, fills and returns from as_of on are rewritten, wallets appear
    after it, and every row at as_of (and before) stays identical."""
    ret, act, pos = _world(2)
    dates = _as_of(60, 100, 130)
    t = dates[1]
    t_ts = (t - date(1970, 1, 1)).days * 86400
    before = m.score_history(ret, act, pos, dates)

    rng = np.random.default_rng(99)
    ret2, act2, pos2 = ret.copy(), act.copy(), pos.copy()
    late = pd.to_datetime(ret2["day"]) >= pd.Timestamp(t)
    ret2.loc[late, "daily_return"] = rng.normal(0.3, 0.5, late.sum())  # returns from t on
    ret2.loc[late, "pnl_net"] *= -7
    late_a = pd.to_datetime(act2["day"]) >= pd.Timestamp(t)
    act2.loc[late_a, "volume"] *= 50  # fills from t on
    after = pos2["resolved_ts"] >= t_ts
    pos2.loc[after, "won"] = 1 - pos2.loc[after, "won"]  # outcomes resolved from t on flip
    pos2.loc[after, "payout"] = 1 - pos2.loc[after, "payout"]
    pos2.loc[after, "price_paid"] = 0.5
    pos2.loc[after & (rng.uniform(size=len(pos2)) < 0.3), "cut_ts"] = t_ts + 3600.0  # oversold after t
    newcomer = "0x" + "f" * 40
    ret2 = pd.concat(
        [ret2, pd.DataFrame({"wallet": newcomer, "day": _as_of(150), "daily_return": 0.5, "pnl_net": 9.0})]
    )
    pos2 = pd.concat([pos2, pd.DataFrame({"wallet": [newcomer], "category": ["Weather"], "resolved_ts": [t_ts + 10.0],
                                          "cut_ts": [NAN], "price_paid": [0.2], "payout": [1.0], "won": [1.0]})])  # fmt: skip
    changed = m.score_history(ret2, act2, pos2, dates)

    for d in dates[:2]:
        a = before[before["as_of"] == d].reset_index(drop=True)
        b = changed[changed["as_of"] == d].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    # the rewrite did reach the later date, so the test can fail
    late_a = before[before["as_of"] == dates[2]].set_index("wallet")["wqs"]
    late_b = changed[changed["as_of"] == dates[2]].set_index("wallet")["wqs"]
    assert not late_a.equals(late_b.reindex(late_a.index))


def test_score_history_with_no_data_is_empty():
    empty = pd.DataFrame({"wallet": [], "day": [], "daily_return": [], "pnl_net": []})
    act = pd.DataFrame({"wallet": [], "day": [], "volume": [], "volume_sq": []})
    pos = pd.DataFrame(
        {c: [] for c in ("wallet", "category", "resolved_ts", "cut_ts", "won", "payout", "price_paid")}
    )
    out = m.score_history(empty, act, pos, _as_of(10))
    assert out.empty and list(out.columns) == m.HISTORY_COLUMNS


def test_current_drawdown_as_of():
    r = np.array([[0.1, -0.5, 0.2, NAN, 1.0]])
    got = m.current_drawdown_as_of(r, [0, 1, 2, 3, 4, 5])[0]
    wealth = np.array([1.0, 1.1, 0.55, 0.66, 0.66, 1.32])
    expected = wealth / np.maximum.accumulate(wealth) - 1
    np.testing.assert_allclose(got[1:], expected[1:], rtol=1e-12)
    assert np.isnan(got[0])


def test_a_date_scores_the_same_whichever_other_dates_are_scored_with_it():
    """A daily run scores one new date; a rebuild scores them all: the rows must agree to the bit."""
    ret, act, pos = _world(3)
    t = _as_of(120)[0]
    alone = m.score_history(ret, act, pos, [t])
    together = m.score_history(ret, act, pos, _as_of(40, 120, 190))
    pd.testing.assert_frame_equal(
        alone, together[together["as_of"] == t].reset_index(drop=True), check_exact=True
    )


def test_buckets_and_carried_state_give_the_single_pass_to_the_bit():
    """Three wallet buckets, one as-of date at a time, the state kept three days back: the same frame as one pass."""
    ret, act, pos = _world(5, 60)
    dates = np.array(_as_of(20, 61, 90, 91, 133, 150, 199, 200), dtype="datetime64[D]")
    full = m.score_history(ret, act, pos, dates)
    d0 = np.datetime64(pd.to_datetime(pd.concat([ret["day"], act["day"]])).min().date(), "D")
    ends = ((dates - d0) // np.timedelta64(1, "D")).astype(int)
    index = pd.Index(pd.unique(pd.concat([ret["wallet"], act["wallet"], pos["wallet"]]))).sort_values()
    buckets = np.array_split(index.to_numpy(dtype=object), 3)
    states = [m.ScoreState.empty(b) for b in buckets]
    rates = m.category_rates(m.position_spans(pos, dates), dates.size)
    rows = []
    for k, e in enumerate(ends):
        e0 = states[0].end
        mats = [m.day_matrices(ret, act, pd.Index(b), d0, e0, e) for b in buckets]
        total, count = np.zeros(e - e0), np.zeros(e - e0, dtype=np.int64)
        for mat in mats:
            total, count = m.benchmark_sums(total, count, mat[0])
        keep = max(0, e - e0 - 3)
        at = m.CategoryRates(rates.categories, rates.rate[:, k : k + 1], rates.overall[k : k + 1])
        for i, b in enumerate(buckets):
            met, states[i] = m.advance_scores(states[i], *mats[i], m.benchmark(total, count), [e], keep=keep)
            spans = m.position_spans(pos, dates[k : k + 1])
            rows_of = pd.Index(b).get_indexer(spans["wallet"])
            met |= m.position_metrics(spans[rows_of >= 0], rows_of[rows_of >= 0], len(b), at, m.ScoreParams())
            rows.append(m.history_rows(b, dates[k : k + 1], met, m.ScoreParams()))
    assert states[0].end < ends[-1]  # the state did lag, so the next chunk re-read days
    carried = pd.concat(rows, ignore_index=True).sort_values(["as_of", "wallet"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(full, m.rank_history(carried), check_exact=True)


def test_returns_matrix_is_the_pivot_with_first_non_null_and_every_calendar_day():
    """Unsorted rows, a gap of days, a NULL return, a (wallet, day) twice with its first row NULL and twice with
    two returns: the array of ``pivot_table(aggfunc="first")`` reindexed to every day, wallets sorted."""
    rng = np.random.default_rng(5)
    rows = pd.DataFrame(
        {
            "wallet": rng.choice(["0xc", "0xa", "0xb"], 60),
            "day": pd.to_datetime(rng.choice(pd.date_range("2026-01-01", "2026-01-20").delete([5, 6]), 60)),
            "daily_return": rng.normal(0, 0.02, 60),
        }
    )
    rows.loc[3, "daily_return"] = NAN
    extra = pd.DataFrame({"wallet": ["0xa", "0xa", "0xb", "0xb"], "day": pd.to_datetime(["2026-01-25"] * 4),
                          "daily_return": [NAN, 0.5, 0.1, 0.2]})  # fmt: skip
    rows = pd.concat([rows, extra], ignore_index=True)
    wallets, days, r = m.returns_matrix(rows)
    wide = rows.pivot_table(
        index="wallet", columns="day", values="daily_return", aggfunc="first", dropna=False
    )
    wide = wide.reindex(columns=pd.date_range("2026-01-01", "2026-01-25", freq="D"))
    assert list(wallets) == ["0xa", "0xb", "0xc"] and list(days) == list(wide.columns)
    np.testing.assert_array_equal(r, wide.to_numpy(dtype=float))
    assert r[0, -1] == 0.5 and r[1, -1] == 0.1 and np.isnan(r[:, 5:7]).all()
    empty = m.returns_matrix(rows.iloc[:0])
    assert len(empty[0]) == len(empty[1]) == 0 and empty[2].shape == (0, 0)


def _same(a, b) -> None:
    """Equal to the bit (NaN where NaN), whatever the container: arrays, dicts of arrays, states, frames."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, m.ScoreState):
        assert a.end == b.end and list(a.wallets) == list(b.wallets)
        _same(dict(a.values), dict(b.values))
    elif isinstance(a, tuple):
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tolist() == b.tolist() if a.dtype == object else np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("cells", [1, 200, 2_000])
def test_the_row_wise_kernels_give_the_same_bits_whatever_the_block_of_rows(monkeypatch, cells):
    """Rolling Sharpes, the whole-history scores and the carried scores run a block of rows at a time (to keep
    their temporaries in cache); one row a block, blocks that split the wallets unevenly (200 cells of 160 days:
    one row; of 200 days: one row), and several rows a block all give the one-block result to the bit."""
    r = _returns(7, wallets=9)
    ret, act, pos = _world(3, 23)
    feats = pd.DataFrame({"wallet": [*sorted(ret["wallet"].unique()), "0xghost"], "n_resolved_positions": 60.0,
                          "volume": 5e4, "market_hhi": 900.0})  # fmt: skip
    index = pd.Index(sorted(ret["wallet"].unique()))
    d0 = np.datetime64(START, "D")
    mats = m.day_matrices(ret, act, index, d0, 0, DAYS)
    bench = m.benchmark(*m.benchmark_sums(np.zeros(DAYS), np.zeros(DAYS, dtype=np.int64), mats[0]))
    ends = [0, 1, 31, 120, 199, 200]

    def run():
        state = m.ScoreState.empty(index.to_numpy(dtype=object))
        first = m.advance_scores(state, *(x[:, :150] for x in mats), bench[:150], [e for e in ends if e <= 150],
                                 keep=147)  # fmt: skip
        later = m.advance_scores(
            first[1], *(x[:, 147:] for x in mats), bench[147:], [e for e in ends if e >= 147]
        )
        return m.rolling_sharpes(r), m.score_wallets(feats, ret), first, later

    whole = run()
    monkeypatch.setattr(m, "BLOCK_CELLS", cells)
    assert len(m._row_blocks(len(index), DAYS)) > 1
    _same(run(), whole)


def test_returns_matrix_reads_a_categorical_wallet_column_as_its_strings():
    """Arrow's dictionary (``strings_to_categorical``) with an unused and unsorted category: the same array and
    wallets as the strings; a NULL wallet is refused by name in either form."""
    ret, _, _ = _world(4, 12)
    cat = ret.assign(
        wallet=pd.Categorical(ret["wallet"], categories=[*ret["wallet"].unique()[::-1], "0xunused"])
    )
    cat["day"] = pd.to_datetime(cat["day"])
    _same(m.returns_matrix(cat)[2], m.returns_matrix(ret)[2])
    assert list(m.returns_matrix(cat)[0]) == sorted(ret["wallet"].unique())
    for frame in (ret, cat):
        bad = frame.copy()
        bad.loc[5, "wallet"] = None
        with pytest.raises(ValueError, match="1 return rows have no wallet"):
            m.returns_matrix(bad)
