"""The strategy's thresholds in one typed config (docs/metrics.md), shared by every asset of a run, by the gates
and by the live loop: a Dagster resource (``strategy``) whose defaults are the documented values, shown in the
launchpad and overridable per run (``resources: {strategy: {config: {...}}}``), so an override reaches every
stage at once. The run writes the config it used into the live snapshot (``live/snapshot.py``), and the live loop
decides with exactly that config."""

from dataclasses import replace

import dagster as dg

from assets.evaluate import backtest
from assets.paper import model as paper
from assets.risk import model as risk
from assets.score import model as score
from assets.signal import model as signal
from assets.size import model as size


class StrategyConfig(dg.ConfigurableResource):
    # scoring (assets/score): docs/metrics.md#scoring-kernels and #point-in-time-scores
    # as-of dates on a fixed grid (7: Mondays), plus the day after the last data day
    score_every_days: int = 7
    win_rate_prior_strength: float = score.WIN_RATE_PRIOR_STRENGTH
    edge_prior_strength: float = score.EDGE_PRIOR_STRENGTH
    min_return_days: int = score.MIN_RETURN_DAYS
    consistency_scale: float = score.CONSISTENCY_SCALE
    consistency_min_points: int = score.CONSISTENCY_MIN_POINTS
    regime_band: float = score.REGIME_BAND
    # discovery (analytics.whale_universe)
    universe_min_wqs: float = 60.0  # MID tier and above
    # a wallet flagged as a market maker, farmer, bot or wash trader (analytics.wallet_flags_history) stays out of
    # the universe, stage 1 and the backtest's whales unless this is set: docs/metrics.md#wallet-flags
    keep_flagged_wallets: bool = False
    predictive_positions: int = 20  # posterior-predictive wins in the next N resolved positions
    predictive_draws: int = 10_000
    # evaluation (evaluation.score_ic)
    ic_horizon_days: int = 30
    ic_min_forward_days: int = 20  # a forward window needs this many return days

    # whale quarantine (analytics.whale_quarantine): docs/metrics.md#whale-quarantine
    strike_min_sharpe: float = risk.STRIKE_MIN_SHARPE
    strike_max_drawdown: float = risk.STRIKE_MAX_DRAWDOWN
    strike_min_consistency: float = risk.STRIKE_MIN_CONSISTENCY
    strikes_to_quarantine: int = risk.STRIKES_TO_QUARANTINE
    strike_window_days: int = risk.STRIKE_WINDOW_DAYS
    quarantine_days: int = risk.QUARANTINE_DAYS
    # signals (analytics.signals): docs/metrics.md#signals
    min_wqs: float = signal.SignalParams.min_wqs
    max_whale_drawdown: float = signal.SignalParams.max_whale_drawdown
    min_notional: float = signal.SignalParams.min_notional
    max_slippage: float = signal.SignalParams.max_slippage
    max_days_to_resolution: float = signal.SignalParams.max_days_to_resolution
    min_edge: float = signal.SignalParams.min_edge
    impact_coefficient: float = signal.SignalParams.impact_coefficient
    copy_latency_seconds: int = 60
    starting_nav: float = 10_000.0
    max_position_nav: float = 0.08

    # stage 3, sizing and the paper portfolio (analytics.orders, paper_*): docs/metrics.md#paper-portfolio
    max_correlation: float = signal.SignalParams.max_correlation
    max_exposure_nav: float = signal.SignalParams.max_exposure_nav
    max_category_nav: float = signal.SignalParams.max_category_nav
    kelly_fraction: float = size.KELLY_FRACTION
    var_confidence: float = 0.95
    var_limit_nav: float = 0.08
    var_window_days: int = 60
    time_exit_hours: float = risk.TIME_EXIT_HOURS

    # the walk-forward backtest (evaluation.backtest_*): docs/metrics.md#walk-forward-backtest
    backtest_warmup_days: int = backtest.BacktestParams.warmup_days
    backtest_fold_days: int = backtest.BacktestParams.fold_days
    backtest_train_days: int = backtest.BacktestParams.train_days
    backtest_max_whales: int = backtest.BacktestParams.max_whales
    backtest_fixed_notional: float = backtest.BacktestParams.fixed_notional
    backtest_min_wqs_grid: list[float] = list(backtest.BacktestParams.min_wqs_grid)
    backtest_bootstrap: int = backtest.BacktestParams.n_boot
    backtest_seed: int = backtest.BacktestParams.seed
    backtest_min_trades: int = backtest.BacktestParams.min_trades  # fewer: a target reads "not measurable"

    def volatility_min_wqs(self) -> float:
        """The lowest WQS any strategy sizes a whale at (stage 1 here, the universe, the backtest's grid): the
        candidates below it never reach sizing, so their whale's volatility is not needed."""
        return min(self.min_wqs, self.universe_min_wqs, *self.backtest_min_wqs_grid)

    def gate_bounds(self) -> dict[str, float]:
        """The bounds the gates read from this config (quality/expectations.py), so a gate moves with it."""
        return {"max_position_nav": self.max_position_nav}

    def backtest_params(self) -> backtest.BacktestParams:
        return backtest.BacktestParams(
            warmup_days=self.backtest_warmup_days,
            fold_days=self.backtest_fold_days,
            train_days=self.backtest_train_days,
            max_whales=self.backtest_max_whales,
            universe_min_wqs=self.universe_min_wqs,
            fixed_notional=self.backtest_fixed_notional,
            min_wqs_grid=tuple(self.backtest_min_wqs_grid),
            n_boot=self.backtest_bootstrap,
            seed=self.backtest_seed,
            min_trades=self.backtest_min_trades,
        )

    def paper_params(self, fee_rate: float) -> paper.PaperParams:
        return paper.PaperParams(
            starting_nav=self.starting_nav,
            fee_rate=fee_rate,
            sizing=size.SizingParams(
                kelly_fraction=self.kelly_fraction, max_position_nav=self.max_position_nav
            ),
            signal=replace(
                self.signal_params(),
                max_correlation=self.max_correlation,
                max_exposure_nav=self.max_exposure_nav,
                max_category_nav=self.max_category_nav,
            ),
            var_confidence=self.var_confidence,
            var_limit_nav=self.var_limit_nav,
            var_window_days=self.var_window_days,
            time_exit_hours=self.time_exit_hours,
        )

    def signal_params(self) -> signal.SignalParams:
        return signal.SignalParams(
            min_wqs=self.min_wqs,
            max_whale_drawdown=self.max_whale_drawdown,
            keep_flagged=self.keep_flagged_wallets,
            min_notional=self.min_notional,
            max_slippage=self.max_slippage,
            max_days_to_resolution=self.max_days_to_resolution,
            min_edge=self.min_edge,
            impact_coefficient=self.impact_coefficient,
        )

    def score_params(self) -> score.ScoreParams:
        return score.ScoreParams(
            win_rate_prior_strength=self.win_rate_prior_strength,
            edge_prior_strength=self.edge_prior_strength,
            min_return_days=self.min_return_days,
            consistency_scale=self.consistency_scale,
            consistency_min_points=self.consistency_min_points,
            regime_band=self.regime_band,
        )
