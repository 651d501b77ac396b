"""The walk-forward backtest's pure parts: folds, whale sets, the reverse control, point in time, the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assets.evaluate import backtest as bt
from assets.paper import model as paper
from quality.expectations import STRATEGIES as GATED_STRATEGIES

DAY0 = 20_000
P = bt.BacktestParams(warmup_days=60, fold_days=30, train_days=60, max_whales=2, n_boot=200, seed=3)


def test_folds_roll_forward_and_a_short_tail_joins_the_last_fold():
    folds = bt.make_folds(DAY0, DAY0 + 159, P)
    assert [f.origin - DAY0 for f in folds] == [60, 90, 120]
    assert folds[-1].end == DAY0 + 160  # 150..159 (10 days < 15) joined the fold from 120
    assert [f.train_start - DAY0 for f in folds] == [0, 30, 60]
    assert all(a.end == b.origin for a, b in zip(folds, folds[1:], strict=False))
    assert bt.make_folds(DAY0, DAY0 + 59, P) == []


def test_strategies_are_the_gated_ones():
    assert list(bt.STRATEGIES) == GATED_STRATEGIES


def _scores() -> pd.DataFrame:
    rows = []
    for d in range(0, 400, 7):
        rows += [
            {"as_of_day": DAY0 + d, "wallet": "0xgood", "wqs": 90.0},
            {"as_of_day": DAY0 + d, "wallet": "0xgood2", "wqs": 80.0 if d < 100 else 50.0},
            {"as_of_day": DAY0 + d, "wallet": "0xbad", "wqs": 40.0},
            {"as_of_day": DAY0 + d, "wallet": "0xmid", "wqs": 62.0},
        ]
    return pd.DataFrame(rows)


def test_discovered_whales_use_the_latest_score_on_or_before_the_day():
    s = _scores()
    assert list(bt.discovered(s, DAY0 + 50, P)) == ["0xgood", "0xgood2"]
    assert list(bt.discovered(s, DAY0 + 200, P)) == ["0xgood", "0xmid"]  # 0xgood2 fell below 60
    assert len(bt.discovered(s, DAY0 - 1, P)) == 0
    a = bt.random_wallets(s, DAY0 + 50, 2, seed=1)
    assert len(set(a)) == 2 and set(a) <= set(s["wallet"])
    assert list(a) == list(bt.random_wallets(s, DAY0 + 50, 2, seed=1))


def _world(flip_after: int | None = None):
    """Markets open daily; 0xgood buys the outcome that wins, 0xbad the one that loses, 0xmid either.
    ``flip_after``: every market resolving on or after that day pays the other way (a changed future)."""
    rng = np.random.default_rng(0)
    cands, marks, markets, comp = [], [], [], {}
    key = 0
    for d in range(0, 200):
        cid = f"c{d}"
        yes, no = f"{d}1", f"{d}2"
        comp[yes], comp[no] = no, yes
        resolve = d + 10
        flipped = flip_after is not None and resolve >= flip_after
        win = no if flipped else yes
        for tok, pay in ((yes, 1.0), (no, 0.0)):
            pay = 1.0 - pay if flipped else pay
            markets.append({"token_id": tok, "end_ts": (DAY0 + resolve) * 86400.0,
                            "resolved_ts": (DAY0 + resolve) * 86400.0 + 3600, "payout": pay})  # fmt: skip
            for k in range(d, resolve):
                marks.append(
                    {
                        "token_id": tok,
                        "day": DAY0 + k,
                        "price": 0.5 + (0.3 if tok == win else -0.3) * (k - d) / 10,
                    }
                )
        for wallet, tok, wqs in (
            ("0xgood", yes, 90.0),
            ("0xbad", no, 40.0),
            ("0xmid", yes if rng.random() < 0.5 else no, 62.0),
        ):
            key += 1
            cands.append({
                "key": key, "wallet": wallet, "token_id": tok, "condition_id": cid, "event_id": f"e{d}",
                "category": "Politics" if d % 2 else "Sports", "ts": (DAY0 + d) * 86400.0 + 600,
                "fill_day": DAY0 + d, "whale_price": 0.5, "whale_notional": 20_000.0, "copy_price": 0.51,
                "daily_notional": 1e6, "days_to_resolution": 10.0, "wqs": wqs, "rolling_sharpe_30": 2.0,
                "rolling_sharpe_90": 1.0, "current_drawdown": -0.05, "quarantined": False, "flags": None,
                "edge_at_copy": 0.08,
                "slippage": 0.001, "whale_volatility": 0.02,
            })  # fmt: skip
    sells = pd.DataFrame(columns=["wallet", "token_id", "ts", "price", "fraction"])
    return (pd.DataFrame(cands), pd.DataFrame(marks), sells, pd.DataFrame(markets), pd.Series(comp))


def _run(world, p=P):
    cands, marks, sells, markets, comp = world
    return bt.walk_forward(
        cands, marks, sells, markets, _scores(), comp, DAY0, DAY0 + 219, paper.PaperParams(), p
    )


@pytest.fixture(scope="module")
def run():
    return _run(_world())


def test_strategies_and_controls_behave(run):
    final = {s: float(run.runs[s].nav["nav"].iloc[-1]) for s in bt.STRATEGIES}
    assert final["naive_copy"] > 10_000 and final["full"] > 10_000 and final["fixed_size"] > 10_000
    assert final["reverse"] < 10_000  # the losing side of every signal
    offered = run.candidates
    assert set(offered["naive_copy"]["wallet"]) <= {"0xgood", "0xmid"}
    assert (offered["full"]["wallet"] == "0xgood").any() and "0xbad" not in set(offered["full"]["wallet"])
    rev = offered["reverse"]
    assert rev["token_id"].str.endswith("2").all() and np.allclose(rev["copy_price"], 0.49)
    assert (run.runs["full"].nav["day"].min() == DAY0 + 60) and len(run.folds) == len(
        bt.make_folds(DAY0, DAY0 + 219, P)
    )


def test_a_changed_future_changes_no_choice_made_before_it(run):
    """Flip every outcome resolving from day 140 on: folds whose training ends before 130 choose the same
    threshold with the same in-sample Sharpe, and the portfolios agree up to day 130."""
    changed = _run(_world(flip_after=140))
    early = run.folds["origin"] <= DAY0 + 130
    cols = ["chosen_min_wqs", "in_sample_sharpe", "whales"]
    pd.testing.assert_frame_equal(run.folds.loc[early, cols], changed.folds.loc[early, cols])
    for s in bt.STRATEGIES:
        a, b = run.runs[s].nav, changed.runs[s].nav
        pd.testing.assert_frame_equal(a[a["day"] < DAY0 + 130], b[b["day"] < DAY0 + 130])
    late = changed.runs["naive_copy"].nav
    assert late["nav"].iloc[-1] != run.runs["naive_copy"].nav["nav"].iloc[-1]  # the flip did reach later days


def test_market_pnl_sums_to_the_nav_change(run):
    start = int(run.folds["origin"].min())
    for s in ("naive_copy", "full", "reverse"):
        _, pnl = bt.market_pnl(run.runs[s], run.candidates[s], start, DAY0 + 219)
        nav = run.runs[s].nav["nav"].to_numpy()
        change = np.diff(np.r_[10_000.0, nav])
        np.testing.assert_allclose(pnl.sum(axis=0), change, atol=1e-6)


def test_tables(run):
    start = int(run.folds["origin"].min())
    summary = bt.summary_table(run, start, DAY0 + 219, 10_000.0, P)
    assert list(summary["strategy"]) == list(bt.STRATEGIES)
    s = summary.set_index("strategy")
    assert s.loc["naive_copy", "sharpe_ci_low"] <= s.loc["naive_copy", "sharpe_ci_high"]
    assert (s["n_trials"] == len(bt.STRATEGIES) + len(P.min_wqs_grid)).all()
    assert s.loc["naive_copy", "trades"] == int((run.runs["naive_copy"].fills["kind"] == "entry").sum())
    brinson = bt.brinson_table(run, DAY0 + 219)
    assert set(brinson["category"]) == {"Politics", "Sports"}
    targets = bt.targets_table(summary, brinson).set_index("target")
    assert targets.loc["sharpe_full", "measured"] == pytest.approx(s.loc["full", "sharpe"])
    assert targets.loc["sharpe_naive_copy", "kind"] == "baseline"
    monthly = pd.DataFrame({"month": [DAY0 + 60, DAY0 + 95], "ic": [0.1, -0.2]})
    v = bt.validation_table(run, summary, monthly, None, 0.95)
    assert {"score_ic", "kupiec_pof", "christoffersen_independence", "overfitting", "drawdown"} <= set(
        v["check_name"]
    )
    assert v.loc[v["subject"] == "fold 0", "value"].iloc[0] == pytest.approx(0.1)
    costs = bt.contribution_table(run, DAY0 + 219)
    fees = costs[(costs["strategy"] == "full") & (costs["item"] == "fees")]["pnl"].iloc[0]
    assert fees == pytest.approx(-run.runs["full"].fills["fee"].sum())


def _target_rows(trades=(100, 100, 100)) -> list[dict]:
    base = {f"{m}{x}": np.nan for m in bt.METRICS for x in ("", "_ci_low", "_ci_high")}
    rows = []
    for (s, sharpe, lo, hi, dd, tail), n in zip(
        (("naive_copy", 0.9, 0.5, 1.2, 0.3, -0.04), ("fixed_size", 1.0, 0.5, 1.5, 0.5, -0.03),
         ("full", 2.5, 2.0, 3.0, 0.1, -0.01)), trades, strict=True):  # fmt: skip
        rows.append(base | {"strategy": s, "sharpe": sharpe, "sharpe_ci_low": lo, "sharpe_ci_high": hi,
                            "max_drawdown": dd, "max_drawdown_ci_low": dd - 0.1, "max_drawdown_ci_high": dd + 0.1,
                            "tail_return_5": tail, "trades": n})  # fmt: skip
    return rows


def test_targets_semantics():
    rows = _target_rows()
    brinson = pd.DataFrame({"allocation": [0.01], "selection": [0.03], "interaction": [0.0]})
    t = bt.targets_table(pd.DataFrame(rows), brinson).set_index("target")
    assert t.loc["sharpe_full", "met"] and t.loc["max_drawdown_full", "met"]
    assert t["status"].to_dict() == {
        "sharpe_full": "met", "sharpe_naive_copy": "reproduced", "max_drawdown_full": "met",
        "max_drawdown_fixed_size": "not reproduced", "tail_risk_reduction": "met", "alpha_from_selection": "met",
    }  # fmt: skip
    assert t["reason"].isna().all() and not bt.unmeasurable(t.reset_index())
    assert t.loc["sharpe_naive_copy", "met"]  # 0.71 lies in [0.5, 1.2]: the baseline is reproduced
    assert not t.loc["max_drawdown_fixed_size", "met"]  # 0.246 lies outside [0.4, 0.6]: not reproduced
    assert (
        t.loc["tail_risk_reduction", "measured"] == pytest.approx(0.75)
        and t.loc["tail_risk_reduction", "met"]
    )
    assert (
        t.loc["alpha_from_selection", "measured"] == pytest.approx(0.75)
        and t.loc["alpha_from_selection", "met"]
    )
    # a shortfall made mostly of selection is not alpha from selection
    short = bt.targets_table(pd.DataFrame(rows), brinson * -1).set_index("target")
    assert short.loc["alpha_from_selection", "measured"] == pytest.approx(0.75)
    assert not short.loc["alpha_from_selection", "met"]
    assert "no alpha to attribute" in short.loc["alpha_from_selection", "definition"]


@pytest.mark.parametrize(("full_trades", "measurable"), [(20, True), (19, False), (0, False)])
def test_a_target_on_a_strategy_with_too_few_trades_is_not_measurable_never_met(full_trades, measurable):
    """A strategy that made no trade has a 0% drawdown and no tail: the targets that read it say why they cannot
    be measured (the stage that stopped its candidates), never "met". 20 trades (the bound) are measurable."""
    brinson = pd.DataFrame({"allocation": [0.01], "selection": [0.03], "interaction": [0.0]})
    why = {"full": "stage 2 (trade) stopped all 40 that passed stage 1: whale trade under $5,000 (40)"}
    t = bt.targets_table(pd.DataFrame(_target_rows((100, 0, full_trades))), brinson, why).set_index("target")
    reads_full = ["sharpe_full", "max_drawdown_full", "tail_risk_reduction", "alpha_from_selection"]
    # fixed_size made no trade in every case: its baseline is never reproduced nor refuted
    assert t.loc["max_drawdown_fixed_size", "status"] == "not measurable"
    assert pd.isna(t.loc["max_drawdown_fixed_size", "met"])
    assert (
        "`fixed_size` made 0 trades (a target needs 20): no reason recorded"
        == t.loc["max_drawdown_fixed_size", "reason"]
    )
    assert t.loc["sharpe_naive_copy", "status"] == "reproduced"
    if measurable:
        assert (t.loc[reads_full, "status"] == "met").all()
    else:
        assert (t.loc[reads_full, "status"] == "not measurable").all() and t.loc[
            reads_full, "met"
        ].isna().all()
        assert all(why["full"] in r and f"made {full_trades} trade" in r for r in t.loc[reads_full, "reason"])
        assert bt.unmeasurable(t.reset_index())[t.loc["sharpe_full", "reason"]] == ", ".join(reads_full)


def test_the_stop_reason_names_the_stage_that_stopped_the_candidates():
    p = bt.signal.SignalParams()
    c = pd.DataFrame({"wqs": [80.0, 90.0, 50.0], "rolling_sharpe_30": 2.0, "rolling_sharpe_90": 1.0,
                      "current_drawdown": -0.1, "quarantined": False, "flags": None,
                      "whale_notional": [4_000.0, 4_999.0, 10_000.0], "slippage": 0.001, "days_to_resolution": 10.0,
                      "edge_at_copy": 0.05})  # fmt: skip
    assert bt.stop_reason("full", c, 0, 0, 20, p, 65.0) == (
        "stage 2 (trade) stopped all 2 that passed stage 1: whale trade under $5,000 (2)"
    )
    assert bt.stop_reason("full", c.assign(wqs=10.0), 0, 0, 20, p, 65.0) == (
        "stage 1 (whale) stopped all 3 candidates: WQS below 75 (3)"
    )
    assert bt.stop_reason("full", c.iloc[:0], 0, 0, 20, p, 65.0) == (
        "stage 1 (whale): no whale BUY out of sample had a WQS of 65 or more"
    )
    assert bt.stop_reason("naive_copy", c, 0, 0, 0, p, 65.0).startswith("no wallet to copy at any origin")
    assert (
        bt.stop_reason("naive_copy", c, 0, 0, 20, p, 65.0) == "its 20 fold whales made no BUY out of sample"
    )
