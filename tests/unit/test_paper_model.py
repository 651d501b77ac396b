"""The paper portfolio: fills, exits, settlement, limits, the VaR block, and its invariants."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.paper import model as paper
from assets.size import model as size

D0 = 20_000  # a day number
DEEP = 1e12  # a token's daily notional so large that slippage is nil


def _candidate(key, token, day, price=0.5, edge=0.05, category="Politics", event=None, wallet="w", hour=12):
    return {"key": key, "wallet": wallet, "token_id": token, "condition_id": f"c-{token}", "event_id": event or f"e-{token}",
            "category": category, "ts": day * 86_400 + hour * 3600, "copy_price": price, "edge_at_copy": edge,
            "wqs": 80.0, "whale_volatility": 0.02, "daily_notional": DEEP}  # fmt: skip


def _marks(token, prices, start=D0):
    return pd.DataFrame({"token_id": token, "day": np.arange(start, start + len(prices)), "price": prices})


def _market(token, end_day=None, resolved_day=None, payout=np.nan):
    return {"token_id": token, "end_ts": np.nan if end_day is None else end_day * 86_400.0,
            "resolved_ts": np.nan if resolved_day is None else resolved_day * 86_400 + 3600.0, "payout": payout}  # fmt: skip


NO_SELLS = pd.DataFrame(columns=["wallet", "token_id", "ts", "price", "fraction"])


def test_one_copy_held_to_resolution():
    cands = pd.DataFrame([_candidate(1, "A", D0)])
    res = paper.run_paper(cands, _marks("A", [0.5] * 10), NO_SELLS, pd.DataFrame([_market("A", resolved_day=D0 + 5, payout=1.0)]),
                          D0, D0 + 9)  # fmt: skip
    expected = size.adaptive_kelly(0.05, 0.5, 80.0, 0.02, 0.0, 0.0, 10_000.0)
    entry = res.fills[res.fills["kind"] == "entry"].iloc[0]
    assert entry["shares"] == expected.shares == 800  # 0.5 * 0.1 * 0.88 / 1.1 = 4% of NAV at 0.50
    settle = res.fills[res.fills["kind"] == "settlement"].iloc[0]
    assert settle["day"] == D0 + 5 and settle["price"] == 1.0 and settle["fee"] == 0.0
    final = res.nav.iloc[-1]
    assert final["cash"] == pytest.approx(10_000 - 400 - 8 + 800)
    assert final["open_positions"] == 0 and final["nav"] == pytest.approx(final["cash"])
    pos = res.positions.iloc[0]
    assert pos["close_reason"] == "settlement" and pos["realised_pnl"] == pytest.approx(
        800 - 400 - 8, abs=0.01
    )  # slippage on a deep book: ~0


def test_trailing_stop_time_exit_and_mirrored_whale_sell():
    cands = pd.DataFrame([_candidate(1, "A", D0), _candidate(2, "B", D0, category="Sports"),
                          _candidate(3, "C", D0, category="Crypto", wallet="x")])  # fmt: skip
    marks = pd.concat([
        _marks("A", [0.50, 0.55, 0.60, 0.62, 0.61, 0.40, 0.40, 0.40, 0.40, 0.40]),  # up 5%+, then through the stop
        _marks("B", [0.50] * 10),
        _marks("C", [0.50] * 10),
    ])  # fmt: skip
    markets = pd.DataFrame([_market("A"), _market("B", end_day=D0 + 4), _market("C")])
    sells = pd.DataFrame(
        [{"wallet": "x", "token_id": "C", "ts": (D0 + 2) * 86_400 + 60, "price": 0.55, "fraction": 0.5}]
    )
    res = paper.run_paper(cands, marks, sells, markets, D0, D0 + 9)
    by = res.positions.set_index("token_id")
    assert by.loc["A", "close_reason"] == "trailing_stop" and by.loc["A", "closed_day"] == D0 + 5
    assert (
        by.loc["B", "close_reason"] == "time_exit" and by.loc["B", "closed_day"] == D0 + 3
    )  # 24 h before the end
    c_sell = res.fills[(res.fills["token_id"] == "C") & (res.fills["kind"] == "whale_sell")].iloc[0]
    c_entry = res.fills[(res.fills["token_id"] == "C") & (res.fills["kind"] == "entry")].iloc[0]
    assert c_sell["shares"] == pytest.approx(-c_entry["shares"] / 2)
    assert c_sell["price"] == pytest.approx(
        0.55, abs=1e-5
    )  # the whale's price, less ~0 slippage on a deep book
    assert by.loc["C", "shares_open"] == pytest.approx(c_entry["shares"] / 2)
    assert set(res.alerts["kind"]) == {"trailing_stop", "time_exit"}


def test_linked_outcomes_category_cap_and_no_double_entry():
    cands = pd.DataFrame([
        _candidate(1, "A", D0, price=0.3, edge=0.3),  # a big order: 8% of NAV
        _candidate(2, "B", D0, event="e-A"),  # another outcome of A's event: linked
        _candidate(3, "A", D0),  # A again: already held
        *[_candidate(10 + i, f"T{i}", D0, price=0.3, edge=0.3) for i in range(4)],  # Politics fills up to 30%
    ])  # fmt: skip
    marks = pd.concat([_marks(t, [0.3] * 3) for t in ["A", "B", "T0", "T1", "T2", "T3"]])
    res = paper.run_paper(cands, marks, NO_SELLS, pd.DataFrame([_market(t) for t in ["A", "B", "T0", "T1", "T2", "T3"]]),
                          D0, D0 + 2)  # fmt: skip
    dec = res.decisions.set_index("key")
    assert dec.loc[1, "copied"] and dec.loc[1, "fraction"] == pytest.approx(0.08)
    assert not dec.loc[2, "copied"] and "correlation with the book" in dec.loc[2, "reason"]
    assert "already holding this outcome" in dec.loc[3, "reason"]
    copied = dec[dec["copied"]]
    assert len(copied) == 3  # 3 x 8% = 24% of NAV in Politics; a fourth would reach 32%
    assert "category exposure would reach 30% of NAV" in dec.loc[12, "reason"]


def test_var_breach_blocks_new_entries_and_raises_an_alert():
    params = paper.PaperParams(var_limit_nav=0.001, var_min_days=5)
    swings = [0.5, 0.6, 0.4, 0.6, 0.4, 0.6, 0.4, 0.6, 0.4, 0.6, 0.4, 0.6]
    cands = pd.DataFrame([_candidate(1, "A", D0), _candidate(2, "B", D0 + 10, category="Sports")])
    marks = pd.concat([_marks("A", swings), _marks("B", [0.5] * 12)])
    res = paper.run_paper(
        cands, marks, NO_SELLS, pd.DataFrame([_market("A"), _market("B")]), D0, D0 + 11, params
    )
    assert "var_breach" in set(res.alerts["kind"])
    assert res.nav["entries_blocked"].iloc[9]
    b = res.decisions.set_index("key").loc[2]
    assert not b["copied"] and "portfolio VaR beyond" in b["reason"]


prices = st.floats(min_value=0.02, max_value=0.98)


@settings(max_examples=40, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 19), prices, st.floats(-0.1, 0.5), st.sampled_from(["P", "S", "C"])),
        min_size=1, max_size=25,
    ),
    drift=st.lists(st.floats(-0.2, 0.2), min_size=20, max_size=20),
)  # fmt: skip
def test_invariants_sizes_exposure_and_no_double_booking(orders, drift):
    cands = pd.DataFrame([_candidate(k, f"T{tok}", D0 + day, price=pr, edge=e, category=cat)
                          for k, (tok, day, pr, e, cat) in enumerate(orders)])  # fmt: skip
    marks = pd.concat(
        [_marks(f"T{t}", np.clip(0.5 + np.cumsum(np.roll(drift, t)) / 4, 0.01, 0.99)) for t in range(8)]
    )
    res = paper.run_paper(
        cands, marks, NO_SELLS, pd.DataFrame([_market(f"T{t}") for t in range(8)]), D0, D0 + 19
    )
    dec = res.decisions
    assert (dec["shares"] >= 0).all() and (dec["fraction"] <= size.MAX_POSITION_NAV + 1e-12).all()
    copied = dec[dec["copied"]]
    # after every entry, exposure (marked at the copy price) is under 95% of what the NAV became
    assert (copied["exposure_after"] <= 0.95 * copied["nav"] + 1e-6).all()
    entries = res.fills[res.fills["kind"] == "entry"]
    assert entries["key"].is_unique and set(entries["key"]) == set(copied["key"])
    assert np.isfinite(res.nav["nav"]).all()


def test_a_decision_at_t_never_depends_on_data_after_t():
    rng = np.random.default_rng(3)
    toks = [f"T{i}" for i in range(6)]
    cands = pd.DataFrame([_candidate(k, toks[k % 6], D0 + int(rng.integers(0, 30)), price=float(rng.uniform(0.2, 0.8)),
                                     edge=float(rng.uniform(0.0, 0.3)), category=["P", "S"][k % 2]) for k in range(40)])  # fmt: skip
    marks = pd.concat(
        [_marks(t, np.clip(0.5 + np.cumsum(rng.normal(0, 0.03, 30)), 0.02, 0.98)) for t in toks]
    )
    markets = pd.DataFrame(
        [
            _market(t, end_day=D0 + 20 + i, resolved_day=D0 + 21 + i, payout=float(i % 2))
            for i, t in enumerate(toks)
        ]
    )
    full = paper.run_paper(cands, marks, NO_SELLS, markets, D0, D0 + 29)
    cut = D0 + 15
    later = markets.copy()
    later.loc[later["resolved_ts"] >= cut * 86_400, "payout"] = 1 - later["payout"]  # outcomes after t flip
    changed = paper.run_paper(
        cands,
        marks.assign(price=np.where(marks["day"] >= cut, 0.99, marks["price"])),
        NO_SELLS,
        later,
        D0,
        D0 + 29,
    )
    before = lambda r: r[r["day"] < cut].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(before(full.decisions), before(changed.decisions))
    pd.testing.assert_frame_equal(before(full.fills), before(changed.fills))
    pd.testing.assert_frame_equal(before(full.nav), before(changed.nav))
    assert not full.nav.equals(changed.nav)  # the change did reach the later days


def test_baseline_switches_fixed_size_no_stage_3_no_risk_rules_and_the_cash_check():
    """The backtest's baselines: a fixed dollar size, no stage 3 and no stops, time exits or VaR block; the cash
    check holds for every strategy."""
    from dataclasses import replace

    cands = pd.DataFrame(
        [_candidate(k, t, D0, category="Politics") for k, t in ((1, "A"), (2, "B"), (3, "C"))]
    )
    marks = pd.concat([_marks("A", [0.50, 0.55, 0.60, 0.62, 0.61, 0.40, 0.40, 0.40, 0.40, 0.40]),
                       _marks("B", [0.50] * 10), _marks("C", [0.50] * 10)])  # fmt: skip
    markets = pd.DataFrame([_market("A"), _market("B", end_day=D0 + 4), _market("C")])
    naive = replace(
        paper.PaperParams(), fixed_notional=4_000.0, portfolio_filter=False, risk_management=False
    )
    res = paper.run_paper(cands, marks, NO_SELLS, markets, D0, D0 + 9, naive)
    entries = res.fills[res.fills["kind"] == "entry"]
    assert list(entries["shares"]) == [8_000, 8_000]  # $4,000 at 0.50 each; the third cannot be paid for
    assert set(res.fills["kind"]) == {"entry"}  # the stop on A and the time exit on B are off
    refused = res.decisions[~res.decisions["copied"]]
    assert list(refused["key"]) == [3] and refused["reason"].iloc[0].startswith("cash: ")
    # the same three with stage 3 on: the 30% category limit refuses the second and third
    fixed = replace(naive, portfolio_filter=True, fixed_notional=2_000.0)
    res = paper.run_paper(cands, marks, NO_SELLS, markets, D0, D0 + 9, fixed)
    assert res.decisions["copied"].tolist() == [True, False, False]
    assert "category exposure" in res.decisions["reason"].iloc[1]
    # holdings: each open position's value per day sums with the cash to the NAV
    h = res.holdings.groupby("day")["value"].sum().reindex(res.nav["day"], fill_value=0.0)
    np.testing.assert_allclose(res.nav["cash"].to_numpy() + h.to_numpy(), res.nav["nav"].to_numpy())


def _history(seed=5, days=30):
    rng = np.random.default_rng(seed)
    toks = [f"T{i}" for i in range(6)]
    cands = pd.DataFrame([_candidate(k, toks[k % 6], D0 + int(rng.integers(0, days)), price=float(rng.uniform(0.2, 0.8)),
                                     edge=float(rng.uniform(0.0, 0.3)), category=["P", "S"][k % 2], wallet=f"w{k % 3}")
                          for k in range(60)]).sort_values("ts", kind="stable").reset_index(drop=True)  # fmt: skip
    cands["key"] = np.arange(len(cands))
    marks = pd.concat(
        [_marks(t, np.clip(0.5 + np.cumsum(rng.normal(0, 0.04, days)), 0.02, 0.98)) for t in toks]
    )
    markets = pd.DataFrame([_market(t, end_day=D0 + 12 + 3 * i, resolved_day=D0 + 14 + 3 * i, payout=float(i % 2))
                            for i, t in enumerate(toks)])  # fmt: skip
    sells = pd.DataFrame({"wallet": ["w0", "w1", "w2", "w0"], "token_id": ["T0", "T1", "T2", "T3"],
                          "ts": [(D0 + d) * 86_400.0 + 7200 for d in (5, 9, 17, 22)], "price": 0.6, "fraction": 0.5})  # fmt: skip
    return cands, marks, sells, markets


def _as_known_on(day, cands, marks, sells, markets):
    """The inputs as a run at the end of ``day`` has them: nothing later, no resolution yet after it."""
    later = markets["resolved_ts"] >= (day + 1) * 86_400
    known = markets.assign(
        resolved_ts=markets["resolved_ts"].where(~later), payout=markets["payout"].where(~later)
    )
    return (cands[cands["ts"] < (day + 1) * 86_400], marks[marks["day"] <= day],
            sells[sells["ts"] < (day + 1) * 86_400], known)  # fmt: skip


def _same(a: paper.PaperResult, b: paper.PaperResult) -> None:
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def test_a_run_goes_on_from_the_book_it_kept_and_gets_the_replays_result_to_the_bit():
    """The daily run keeps its book as it was STATE_LAG_DAYS before its last day; the next run goes on from it
    when nothing the book had read changed, and replays the history when something did (a candidate exactly on
    the kept day), each time with the result of one run over the whole history."""
    cands, marks, sells, markets = _history()
    full = paper.run_paper(cands, marks, sells, markets, D0, D0 + 29)

    res, kept, how = paper.run_paper_carried(*_as_known_on(D0 + 19, cands, marks, sells, markets), D0, D0 + 19,
                                             paper.PaperParams(), None)  # fmt: skip
    assert how.startswith("replayed from day") and kept.through == D0 + 19 - paper.STATE_LAG_DAYS == D0 + 16
    _same(res, paper.run_paper(*_as_known_on(D0 + 19, cands, marks, sells, markets), D0, D0 + 19))
    assert len(kept.book) > 0 and kept.first_day == D0

    res, nxt, how = paper.run_paper_carried(
        cands, marks, sells, markets, D0, D0 + 29, paper.PaperParams(), kept
    )
    assert how == f"went on from the book kept at day {D0 + 16}" and nxt.through == D0 + 26
    _same(res, full)
    assert len(res.decisions) == len(cands) and res.fills["kind"].nunique() >= 3  # entries, sells, exits
    # the same day again: the kept book stays, and the result with it
    again, same, how = paper.run_paper_carried(
        cands, marks, sells, markets, D0, D0 + 29, paper.PaperParams(), nxt
    )
    assert same == nxt and how.startswith("went on") and _same(again, full) is None

    # a late candidate on the kept day: the book is replayed; one a day after it: the kept book is still good
    for late_day, replayed in ((D0 + 16, True), (D0 + 17, False)):
        late = pd.concat([cands, pd.DataFrame([_candidate(99, "T5", late_day, price=0.3, edge=0.25)])])
        late = late.sort_values("ts", kind="stable").reset_index(drop=True)
        late = late.assign(key=np.arange(len(late)))
        res, _, how = paper.run_paper_carried(
            late, marks, sells, markets, D0, D0 + 29, paper.PaperParams(), kept
        )
        assert how.startswith("replayed") == replayed, how
        _same(res, paper.run_paper(late, marks, sells, markets, D0, D0 + 29))
    # a resolution that arrives late for a day the kept book covers: replayed
    moved = markets.assign(resolved_ts=markets["resolved_ts"] - 3 * 86_400)
    res, _, how = paper.run_paper_carried(cands, marks, sells, moved, D0, D0 + 29, paper.PaperParams(), kept)
    assert how == f"replayed from day {D0}: inputs up to day {D0 + 16}, where the kept book stands, changed"
    _same(res, paper.run_paper(cands, marks, sells, moved, D0, D0 + 29))
    # a late whale sell, or a mark that changed, on the kept day: replayed
    held = res.positions.loc[res.positions["entry_day"] <= D0 + 10].iloc[0]
    late_sell = pd.concat([sells, pd.DataFrame({"wallet": [held["wallet"]], "token_id": [held["token_id"]],
                                                "ts": [(D0 + 16) * 86_400.0 + 60], "price": [0.7], "fraction": [1.0]})])  # fmt: skip
    late_sell = late_sell.sort_values("ts", kind="stable").reset_index(drop=True)
    remarked = marks.assign(price=np.where(marks["day"] == D0 + 16, 0.97, marks["price"]))
    for c, m, s_ in ((cands, marks, late_sell), (cands, remarked, sells)):
        res, _, how = paper.run_paper_carried(c, m, s_, markets, D0, D0 + 29, paper.PaperParams(), kept)
        assert how.startswith("replayed"), how
        _same(res, paper.run_paper(c, m, s_, markets, D0, D0 + 29))
    # the marks in another order (a token's row in the mark book moves): the kept positions follow their tokens
    shuffled = marks.iloc[::-1].reset_index(drop=True)
    res, _, how = paper.run_paper_carried(
        cands, shuffled, sells, markets, D0, D0 + 29, paper.PaperParams(), kept
    )
    assert (
        how.startswith("went on")
        and paper.thaw_book(kept.book, paper.PaperParams(), paper.MarkBook(0), {}).open
    )
    _same(res, full)
    # a kept book that cannot be read (here: cut short): replayed
    res, _, how = paper.run_paper_carried(cands, marks, sells, markets, D0, D0 + 29, paper.PaperParams(),
                                          kept._replace(book=kept.book[:-9]))  # fmt: skip
    assert how.startswith(f"replayed from day {D0}: the kept book could not be read"), how
    _same(res, full)
    # other parameters: replayed
    other = paper.PaperParams(var_limit_nav=0.05)
    res, _, how = paper.run_paper_carried(cands, marks, sells, markets, D0, D0 + 29, other, kept)
    assert how.startswith("replayed")
    _same(res, paper.run_paper(cands, marks, sells, markets, D0, D0 + 29, other))


def test_a_kept_book_is_read_only_as_a_book():
    import collections
    import pickle

    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        paper.thaw_book(pickle.dumps(collections.OrderedDict()), paper.PaperParams(), paper.MarkBook(0), {})
