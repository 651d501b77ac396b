"""``whalecopy live``: the long-lived process that sees a tracked whale's fill within seconds and decides on it with
the batch's engine. One asyncio process per live directory, held by a lock file.

Tasks: the RTDS client (``live/rtds.py``), the poller (``live/poller.py``, reconciliation at start, after every
reconnect or watchdog trip, and every ``poll_every_s``), the snapshot watcher (a new batch generation), the status
line, and one processor that owns the decision path and the store. Every tick of the processor:

1. routes and validates the frames and poll rows (``live.model.normalise``: the batch's ``parse_trades``) and
   records the rejects with their reasons;
2. deduplicates on the full identity (a horizon of identities in memory, the tracked wallets' fills in the store)
   and feeds every new fill to the decider (``live/decider.py``), which keeps flow, prints and orders;
3. releases the orders market time has settled (never past an RTDS gap the polls have not proved closed: replay
   before adopting the new session), closes the days that ended, and decides each order: a BUY learnt of after
   ``max_fill_age_s`` is ``skipped_stale``, exits are not gated;
4. commits the fills, decisions, intents, book inputs and state in one transaction, then emits: the intents to
   ``intents.jsonl``, the alerts to the webhook. At most one decision per ``wallet|transaction|token|side``.

The state is ``running``, ``degraded`` (RTDS down or polls failing, nothing lost yet), ``possible-data-loss`` (an
open loss event: a stretch the loop cannot prove it saw) or ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from assets.ingest.http import PolymarketError
from assets.paper import model as paper
from assets.paper.intents import ORDER_KINDS, intents_frame

from . import model, snapshot
from .decider import DAY, Decider, Order, Snapshot
from .poller import Poller
from .rtds import RtdsClient
from .store import Commit, Store


@dataclass(frozen=True)
class LiveConfig:
    """The loop's settings. Intervals are market seconds unless they say wall (the socket's own timers)."""

    live_dir: Path
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    gamma_url: str = "https://gamma-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    watchlist: Path | None = None
    ping_wall_s: float = 5.0
    watchdog_wall_s: float = 15.0
    poll_every_s: float = 60.0
    poll_page: int = 100
    poll_share: float = 0.5
    api_lag_s: float = 15.0  # when /v2/status does not say
    max_fill_age_s: float = 60.0
    grace_s: float = 0.5
    # the most a healthy feed lags, wall-clock: the market clock when it is silent
    clock_lag_wall_s: float = 10.0
    horizon_s: float = 3600.0
    dedupe_horizon_s: float = 3600.0
    snapshot_wall_s: float = 2.0
    status_wall_s: float = 5.0
    tick_wall_s: float = 0.05
    http_timeout_s: float = 10.0
    http_max_attempts: int = 4
    cache_buster: bool = True
    fast_validation: bool = True  # False: every frame through parse_trades (the benchmark's comparison)
    json_status: bool = False
    speed: float = 1.0  # market seconds per wall second (the simulated market replays faster)
    stop_wait_s: float = 30.0  # on SIGINT/SIGTERM, how long the tick in flight may take to commit

    @property
    def store_path(self) -> Path:
        return self.live_dir / "live.sqlite"

    @property
    def snapshot_root(self) -> Path:
        return self.live_dir / "snapshot"

    @property
    def intents_path(self) -> Path:
        return self.live_dir / "intents.jsonl"

    @property
    def lock_path(self) -> Path:
        return self.live_dir / "live.lock"


class LiveLocked(RuntimeError):
    """Another ``whalecopy live`` holds this live directory."""


@contextlib.contextmanager
def hold_lock(path: Path):
    """One live process per directory: an exclusive ``flock`` on ``live.lock`` (released by the OS if it dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise LiveLocked(f"{path.parent} is held by another `whalecopy live` ({holder}): one live loop per "
                         "directory; stop it, or give --live-dir another directory") from None  # fmt: skip
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    try:
        yield
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()


def read_watchlist(path: Path | None) -> set[str]:
    """Wallets to track beside the batch's universe: one address per line (``#`` comments), lower-cased."""
    if path is None:
        return set()
    out = set()
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip().lower()
        if not text:
            continue
        if not (len(text) == 42 and text.startswith("0x") and all(c in "0123456789abcdef" for c in text[2:])):
            raise ValueError(f"{path}:{n}: {line.strip()!r} is not a wallet (0x and 40 hex digits)")
        out.add(text)
    return out


def _identity_text(row: dict) -> str:
    return "|".join(
        "" if v is None else repr(v) if isinstance(v, float) else str(v) for v in model.identity(row)
    )


@dataclass
class _Frames:
    """The RTDS rows of one tick, in arrival order: (payload ts, wall perf) to find what released an order."""

    arrivals: list[tuple[int, float]] = field(default_factory=list)

    def trigger(self, due: float, fallback: float) -> float:
        for ts, perf in self.arrivals:
            if ts >= due:
                return perf
        return fallback


class RecordingBook(paper.Book):
    """The engine, with every input it receives logged (to rebuild it exactly after a restart)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.log: list[tuple[str, object]] = []

    def on_market(self, token, info):
        self.log.append(("on_market", [token, list(info)]))
        return super().on_market(token, info)

    def on_mark(self, token, day, price):
        self.log.append(("on_mark", [token, int(day), float(price)]))
        return super().on_mark(token, day, price)

    def on_marks(self, tokens, days, prices):
        self.log.append(
            ("on_marks", [list(map(str, tokens)), [int(d) for d in days], [float(p) for p in prices]])
        )
        return super().on_marks(tokens, days, prices)

    def on_fill(self, e, d):
        self.log.append(("on_fill", [{k: _plain(v) for k, v in e._asdict().items()}, int(d)]))
        return super().on_fill(e, d)

    def on_whale_sell(self, wallet, token, ts, price, fraction, d):
        self.log.append(("on_whale_sell", [wallet, token, ts, price, fraction, int(d)]))
        return super().on_whale_sell(wallet, token, ts, price, fraction, d)

    def on_day_end(self, d):
        self.log.append(("on_day_end", [int(d)]))
        return super().on_day_end(d)


def _plain(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, pd.Timestamp | datetime):
        return str(v)
    return v


def replay_book(params: paper.PaperParams, origin: int, log: list[tuple[str, list]]) -> RecordingBook:
    """The book the logged inputs build (after a restart): the same pure engine, the same calls, the same state."""
    book = RecordingBook(params, mark_origin=origin)
    for kind, args in log:
        if kind == "on_market":
            book.on_market(args[0], paper.MarketInfo(*args[1]))
        elif kind == "on_marks":
            book.on_marks(args[0], args[1], args[2])
        elif kind == "on_fill":
            book.on_fill(SimpleNamespace(**args[0], _asdict=lambda a=args[0]: a), args[1])
        else:
            getattr(book, kind)(*args)
    book.log = []
    return book


class LiveLoop:
    def __init__(self, cfg: LiveConfig, *, clock: Callable[[], float] = time.time, alerts=None, out=sys.stdout,
                 on_decision: Callable[[dict], None] | None = None):  # fmt: skip
        self.cfg, self.clock, self.alerts, self.out = cfg, clock, alerts, out
        self.on_decision = on_decision
        self.status = model.Status()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stop = asyncio.Event()
        self.fatal: str | None = None
        self.decide_ms = model.Latencies()
        self.e2e_s = model.Latencies()
        self.rtds_ok = False
        self.poll_errors_recent = 0
        self.reconcile = asyncio.Event()
        self.recover: set[str] = set()
        self.poll_first: list[str] = []  # the wallets a new universe adds: their gap since the batch is known
        self.generation: str | None = None
        self.ending = False  # the simulated feed sent its end: stop once nothing in it is left unproven
        self.replay_through: float | None = None  # the replay's fills end here: later ones do not exist yet
        self.polls_by_wallet: dict[str, int] = {}
        self._fill_decision: dict[int, str] = {}  # this tick's mirrored-sell paper fills -> their decision
        self._emitted: list[int] | None = None  # how many book fills, NAV rows and alerts the store holds

    # ------------------------------------------------------------------------------------------------ set-up
    def _open(self) -> None:
        cfg = self.cfg
        snap = snapshot.load(cfg.snapshot_root)
        self.store = Store(cfg.store_path)
        self.generation = snap.meta["generation"]
        restarted = self.store.state("start_day") is not None
        start_day = self.store.state("start_day", snap.start_day)
        self.decider = Decider(snap, start_day=start_day, book_cls=RecordingBook)
        self.watch = read_watchlist(cfg.watchlist)
        self.decider.track(self.watch)
        self.seen = model.SeenSet(cfg.dedupe_horizon_s)
        self.market = model.MarketClock(cfg.clock_lag_wall_s * cfg.speed, cfg.grace_s)
        now = self.clock()
        self.coverage = model.Coverage(cfg.horizon_s)
        commit = Commit()
        if restarted:
            self._restore(snap, commit, now)
        else:
            for row in snap.recent_fills.to_dict("records"):
                row["source"] = "snapshot"
                self._observe(
                    row, commit, received_at=snap.data_end_ts, perf=time.perf_counter(), applied=True
                )
        stored = {r["wallet"]: r["complete_through"] for r in self.store.rows("SELECT * FROM boundaries")}
        bounds, events = model.start_coverage(self.decider.tracked, stored=stored, snapshot_end=snap.data_end_ts,
                                              now=now, horizon_s=cfg.horizon_s, restarted=restarted)  # fmt: skip
        self.coverage.boundary.update(bounds)
        for e in events:
            self._loss(e, commit)
        if restarted and self.store.state("generation") != self.generation:
            self._close_covered(snap, commit, now)
        commit.state.update(
            start_day=self.decider.start_day, generation=self.generation, day=self.decider.day
        )
        commit.boundaries.update(bounds)
        commit.book_log = list(self.decider.book.log)
        self.decider.book.log.clear()
        commit.positions.update(self.decider.take_moved())
        self.store.commit(commit)
        self.poller = Poller(cfg.data_url, cfg.clob_url, cfg.gamma_url, clock=self.clock, speed=cfg.speed,
                             share=cfg.poll_share, page_limit=cfg.poll_page, timeout_s=cfg.http_timeout_s,
                             max_attempts=cfg.http_max_attempts, cache_buster=cfg.cache_buster)  # fmt: skip
        self.api_lag = cfg.api_lag_s
        self.status.tracked_wallets = len(self.decider.tracked)
        self.status.snapshot = self.generation

    def _restore(self, snap: Snapshot, commit: Commit, now: float) -> None:
        """After a restart (or a kill -9): rebuild the book from its logged inputs, the decider's state from the
        store, re-queue the stored fills not yet decided, and record the stretch the feed was not watched."""
        d, st = self.decider, self.store
        log = [
            (r["kind"], json.loads(r["payload"]))
            for r in st.rows("SELECT kind, payload FROM book_log ORDER BY seq")
        ]
        d.book = replay_book(d.book.p, d.origin, log)
        for r in st.rows("SELECT * FROM token_hours"):
            d.hours[r["token_id"]][int(r["hour"])] = int(r["units"])
        for r in st.rows("SELECT * FROM day_prints"):
            d.day_prints[(r["token_id"], int(r["day"]))] = (int(r["ts"]), float(r["price"]))
        for r in st.rows("SELECT * FROM prints"):
            d.prints[r["token_id"]][int(r["ts"])] = float(r["price"])
        for r in st.rows("SELECT * FROM history"):
            d.history[r["token_id"]][int(r["day"])] = float(r["price"])
        for r in st.rows("SELECT * FROM history_through"):
            d.history_through[r["token_id"]] = int(r["day"])
        for r in st.rows("SELECT * FROM positions"):
            d.positions[(r["wallet"], r["token_id"])] = int(r["units"])
        d.decided_keys = st.decided()
        d.day = int(st.state("day", d.start_day))
        pending = st.rows("SELECT * FROM fills WHERE decision_key NOT IN (SELECT decision_key FROM decisions) "
                          "ORDER BY received_at, ts")  # fmt: skip
        for f in st.rows("SELECT * FROM fills WHERE ts >= ?", [now - self.cfg.dedupe_horizon_s]):
            self.seen.add(model.identity(_stored_row(f)), f["ts"])
        for f in pending:
            d.observe(_stored_row(f), received_at=f["received_at"], tracked=True, applied=True)
        for r in st.rows("SELECT * FROM loss_events WHERE closed_at IS NULL ORDER BY id"):
            self.coverage.add_loss(model.LossEvent(r["reason"], r["start_ts"], r["end_ts"], r["detail"] or "",
                                                   tuple(w for w in (r["wallets"] or "").split(",") if w),
                                                   r["opened_at"]))  # fmt: skip
        d.sync_book_markets()  # the replayed book knew an older snapshot's markets
        last_clock = st.state("clock")
        self.market.saw(st.state("feed_ts", -math.inf))
        if last_clock is not None and now > last_clock:
            self._loss(model.LossEvent("feed-gap", float(last_clock), now, "the loop was not running: the global "
                                       "feed (flow, prints, marks) between these times was not observed; the "
                                       "tracked wallets' fills are recovered by polling", opened_at=now), commit)  # fmt: skip
            self.coverage.open_gap(float(last_clock), "restart")
            self.coverage.close_gap(now)
        self._reconcile_intents()

    def _reconcile_intents(self) -> None:
        """Intents committed but not confirmed emitted before a crash: the JSONL file is the record, so an intent
        already in it is marked emitted and one missing is written now (each intent in the file exactly once)."""
        todo = self.store.rows(
            "SELECT * FROM intents WHERE emitted_at IS NULL ORDER BY created_at, intent_id"
        )
        if not todo:
            return
        present = set()
        path = self.cfg.intents_path
        if path.exists():
            text = path.read_text()
            if text and not text.endswith("\n"):  # a write cut by the crash: drop the partial line
                text = text[: text.rfind("\n") + 1]
                path.write_text(text)
            for line in text.splitlines():
                with contextlib.suppress(ValueError, KeyError):
                    present.add(json.loads(line)["intent_id"])
        self._write_intents([r for r in todo if r["intent_id"] not in present])
        self.store.mark_emitted([r["intent_id"] for r in todo])

    # ------------------------------------------------------------------------------------------------ inputs
    def _on_frame(self, frame: model.Frame, perf: float) -> None:
        self.queue.put_nowait(("frame", frame, perf))

    def _on_event(self, name: str, info: dict) -> None:
        self.queue.put_nowait(("event", name, info, time.perf_counter()))

    async def _poll_task(self) -> None:
        """Reconciliation: a pass over every tracked wallet at start, after every reconnect or watchdog trip (the
        least covered first), when a new universe arrives (the wallets it adds first) and every ``poll_every_s``;
        one wallet per request, paced by the client's bucket."""
        cfg = self.cfg
        next_pass = -math.inf
        todo: list[str] = []
        while not self.stop.is_set():
            if self.reconcile.is_set() or self.clock() >= next_pass:
                self.reconcile.clear()
                first = [w for w in dict.fromkeys(self.poll_first) if w in self.decider.tracked]
                self.poll_first.clear()
                rest = sorted(
                    self.decider.tracked - set(first), key=lambda w: self.coverage.boundary.get(w, 0.0)
                )
                todo = first + rest
                next_pass = self.clock() + cfg.poll_every_s
                lag = await asyncio.to_thread(self.poller.lag)
                if lag is not None:
                    self.api_lag = lag + 1.0
            if not todo and not self.recover:
                await self._sleep_market(min(1.0, max(0.0, next_pass - self.clock())))
                continue
            recovering = bool(self.recover)
            wallet = self.recover.pop() if recovering else todo.pop(0)
            offset = cfg.poll_page if recovering else 0
            # from a little before what is covered: the API lags, and its pages are recomputed every few seconds
            since = int(
                self.coverage.boundary.get(wallet, self.decider.snap.data_end_ts) - self.api_lag - 300
            )
            try:
                rows, requested_at, url = await asyncio.to_thread(self.poller.trades, wallet, since, offset)
            except PolymarketError as exc:
                self.queue.put_nowait(("poll_error", wallet, str(exc)))
                await self._sleep_market(1.0)
                continue
            self.queue.put_nowait(("poll", wallet, rows, requested_at, url, recovering))

    async def _sleep_market(self, market_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.005, market_s / self.cfg.speed))

    async def _snapshot_task(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(self.cfg.snapshot_wall_s)
            g = snapshot.current_generation(self.cfg.snapshot_root)
            if g and g != self.generation:
                self.queue.put_nowait(("snapshot", g))

    async def _tick_task(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(self.cfg.tick_wall_s)
            self.queue.put_nowait(("tick",))

    async def _status_task(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(self.cfg.status_wall_s)
            self.print_status()

    def print_status(self) -> None:
        s = self.status
        s.clock_ts = self.clock()
        s.cpu_s = time.process_time() - getattr(self, "_cpu0", time.process_time())
        if self.cfg.json_status:
            print(json.dumps(s.as_json()), file=self.out, flush=True)
        else:
            when = datetime.fromtimestamp(s.clock_ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{when} {s.line()}", file=self.out, flush=True)

    # ------------------------------------------------------------------------------------------------ the tick
    def _observe(
        self, row: dict, commit: Commit, *, received_at: float, perf: float, applied: bool = False
    ) -> None:
        tracked = row["proxy_wallet"] in self.decider.tracked
        self.decider.observe(
            row, received_at=received_at, received_wall=perf, tracked=tracked, applied=applied
        )
        if not applied:
            token, ts = row["asset"], int(row["ts"])
            h, d = ts // 3600, ts // DAY
            commit.token_hours[(token, h)] = self.decider.hours[token][h]
            commit.prints[(token, ts)] = self.decider.prints[token][ts]
            commit.day_prints[(token, d)] = self.decider.day_prints[(token, d)]
        if tracked:
            self.status.tracked_fills += 1
            commit.fills.append({
                "identity": _identity_text(row), "fill_key": str(row["fill_key"]),
                "decision_key": model.decision_key(row["proxy_wallet"], row.get("transaction_hash"), row["asset"],
                                                   row["side"], row["fill_key"]),
                "wallet": row["proxy_wallet"], "token_id": row["asset"], "condition_id": row["condition_id"],
                "side": row["side"], "outcome_index": row.get("outcome_index"), "price": row["price"],
                "size": row["size"], "ts": int(row["ts"]), "transaction_hash": row.get("transaction_hash"),
                "source": row.get("source", ""), "received_at": received_at, "received_wall": time.time(),
            })  # fmt: skip

    def _loss(self, event: model.LossEvent, commit: Commit) -> None:
        if event not in self.coverage.losses:
            self.coverage.add_loss(event)
        commit.losses_opened.append({"reason": event.reason, "start_ts": event.start_ts, "end_ts": event.end_ts,
                                     "detail": event.detail, "wallets": ",".join(event.wallets),
                                     "opened_at": event.opened_at})  # fmt: skip

    def _market_at(self, perf: float, now: float, tick_perf: float) -> float:
        """The market time of a wall-clock instant of this tick (when a frame reached the socket)."""
        return now - (tick_perf - perf) * self.cfg.speed

    async def _handle(self, items: list) -> None:
        cfg, d, st = self.cfg, self.decider, self.status
        now = self.clock()
        tick_perf = time.perf_counter()
        commit = Commit()
        records, origins, meta = [], [], []
        frames = _Frames()
        for item in items:
            kind = item[0]
            if kind == "frame":
                _, frame, perf = item
                st.frames += 1
                if frame.kind == "trade":
                    source = f"rtds_{frame.rtds_type or 'unlabelled'}"
                    for p in frame.payloads:
                        records.append(p)
                        origins.append(source)
                        meta.append((source, perf))
                elif frame.kind == "clock":  # the simulated feed's in-band market time
                    self.market.saw(frame.clock_ts)
                    if frame.end:
                        self.ending, self.replay_through = True, frame.through
                elif frame.kind == "bad":
                    st.rejected += 1
                    commit.rejected.append({"seq": self.store.next_seq("rejected"), "received_at": now,
                                            "source": "rtds", "reason_code": frame.reason, "reasons": frame.reason,
                                            "record": None})  # fmt: skip
            elif kind == "poll":
                _, wallet, rows, requested_at, url, recovered = item
                st.polls += 1
                self.poll_errors_recent = 0
                for r in rows:  # what the snapshot holds (before its recent fills) is not news
                    ts_ = r.get("timestamp") if isinstance(r, dict) else None
                    if isinstance(ts_, int) and (
                        ts_ < d.snap.meta["recent_start_ts"]
                        or (self.replay_through is not None and ts_ >= self.replay_through)
                    ):
                        continue
                    records.append(r)
                    origins.append(url)
                    meta.append(("poll", tick_perf))
                ts = [
                    int(r["timestamp"])
                    for r in rows
                    if isinstance(r, dict) and isinstance(r.get("timestamp"), int)
                ]
                boundary = self.coverage.boundary.get(wallet, d.snap.data_end_ts)
                out = model.poll_continuity(
                    boundary, requested_at, self.api_lag, ts, cfg.poll_page, recovered
                )
                if out.needs_recovery:
                    self.recover.add(wallet)
                if out.advanced_to is not None and wallet in self.coverage.boundary:
                    self.coverage.boundary[wallet] = out.advanced_to
                    commit.boundaries[wallet] = out.advanced_to
                if out.loss is not None:
                    self._loss(model.LossEvent(**{**out.loss.__dict__, "wallets": (wallet,)}), commit)
            elif kind == "poll_error":
                st.poll_errors += 1
                self.poll_errors_recent += 1
            elif kind == "event":
                _, name, info, perf = item
                if name == "connected":
                    self.rtds_ok = True
                    self.coverage.close_gap(now)
                    self.reconcile.set()
                elif name in ("watchdog", "closed", "connect_failed") and not self.ending:
                    if self.rtds_ok or not self.coverage.gaps or self.coverage.gaps[-1].end_ts is not None:
                        st.reconnects += name != "connect_failed"
                    self.rtds_ok = False
                    start = self.market.feed_ts if math.isfinite(self.market.feed_ts) else now
                    self.coverage.open_gap(start, name)
                elif name == "handler_error":
                    print(
                        f"whalecopy live: a frame's handler failed: {info.get('error')}",
                        file=self.out,
                        flush=True,
                    )
            elif kind == "snapshot":
                self._reload(item[1], commit, now)
        if records:
            self._ingest(records, origins, meta, commit, now, frames, tick_perf)
        await self._release(commit, now, frames, tick_perf)
        for e in self.coverage.settle(now):
            self._loss(e, commit)
        st.state = model.loop_state(fatal=self.fatal is not None, open_losses=len(self.coverage.open_losses()),
                                    rtds_ok=self.rtds_ok, polls_ok=self.poll_errors_recent < 3,
                                    gaps_open=sum(1 for g in self.coverage.gaps))  # fmt: skip
        # the state and a heartbeat on this machine's clock, for readers (the dashboard) to tell running from gone
        commit.state.update(clock=now, feed_ts=self.market.feed_ts if math.isfinite(self.market.feed_ts) else None,
                            day=d.day, generation=self.generation, loop_state=st.state, heartbeat_wall=time.time())  # fmt: skip
        self._book_outputs(commit)
        commit.positions.update(d.take_moved())
        self.store.commit(commit)
        self._emit(commit)
        st.open_losses = len(self.coverage.open_losses())
        st.pending = len(d.queue)
        st.nav = d.book.nav_rows[-1]["nav"] if d.book.nav_rows else d.book.p.starting_nav
        st.decide_p50_ms, st.decide_p99_ms = self.decide_ms.p(50), self.decide_ms.p(99)
        st.e2e_p50_s, st.e2e_p99_s = self.e2e_s.p(50), self.e2e_s.p(99)
        if self.ending and not self.coverage.gaps:  # the replay is over and every gap in it is proven closed
            self.stop.set()

    def _ingest(
        self, records, origins, meta, commit: Commit, now: float, frames: _Frames, tick_perf: float
    ) -> None:
        d, st = self.decider, self.status
        parsed = model.normalise(
            records, origins, source="live", now_ts=int(now), fast=self.cfg.fast_validation
        )
        for r in parsed.rejected:
            st.rejected += 1
            commit.rejected.append({"seq": self.store.next_seq("rejected"), "received_at": now,
                                    "source": r["origin"], "reason_code": r["reason_code"], "reasons": r["reasons"],
                                    "record": r["record"]})  # fmt: skip
        fresh, fresh_meta = [], []
        for row, i in zip(parsed.rows, parsed.positions, strict=True):
            key = model.identity(row)
            source, perf = meta[i]
            if source.startswith("rtds"):
                self.market.saw(row["ts"])
                frames.arrivals.append((row["ts"], perf))
            first = self.seen.add(key, row["ts"])
            if not first and row["proxy_wallet"] not in d.tracked:
                st.duplicates += 1
                continue
            # a tracked wallet's repeat is a duplicate only if the store has it: one seen before its wallet was
            # tracked (a universe that grew) is its fill all the same, its flow already counted
            fresh.append(row)
            fresh_meta.append((source, perf, not first))
        if not fresh:
            return
        tracked_ids = [_identity_text(r) for r in fresh if r["proxy_wallet"] in d.tracked]
        known = self.store.known_identities(tracked_ids) if tracked_ids else set()
        known |= self._tick_identities(commit)
        for row, (source, perf, repeat) in zip(fresh, fresh_meta, strict=True):
            row["fill_key"], row["source"] = model.fill_key(row), source
            if row["proxy_wallet"] in d.tracked:
                text = _identity_text(row)
                if text in known:
                    st.duplicates += 1
                    commit.fill_sources.append((text, source))
                    continue
                known.add(text)
            st.fills_seen += not repeat
            self._observe(
                row, commit, received_at=self._market_at(perf, now, tick_perf), perf=perf, applied=repeat
            )
        self.seen.forget_before(self.market.now(now))

    @staticmethod
    def _tick_identities(commit: Commit) -> set[str]:
        """The tracked fills this tick has stored already (not yet in the store)."""
        return {f["identity"] for f in commit.fills}

    async def _release(self, commit: Commit, now: float, frames: _Frames, tick_perf: float) -> None:
        """Release what market time has settled, closing each day as it ends."""
        d = self.decider
        settled = self.market.settled_through(now)
        if self.coverage.gaps:  # replay before adopting: nothing past what the polls proved
            settled = min(settled, max(self.coverage.gaps[0].start_ts, self.coverage.min_boundary()))
        while True:
            day_end = (d.day + 1) * DAY
            orders = d.release(min(settled, day_end - 1e-6))
            fresh = [o for o in orders if o.side == "BUY" and o.received_at - o.ts <= self.cfg.max_fill_age_s]
            # stages 1 and 2 for the tick's BUYs, in one call
            screened = d.candidates(fresh) if fresh else None
            rows = {o.key: i for i, o in enumerate(fresh)}
            for order in orders:
                row = screened.iloc[[rows[order.key]]] if order.key in rows else None
                await self._decide(order, commit, now, frames, tick_perf, row)
            if settled >= day_end and d.queue.next_due() >= day_end:
                await self._close_day(d.day, commit)
                continue
            break

    async def _history(self, token: str, day: int, commit: Commit) -> None:
        need = self.decider.history_needed(token, day)
        if need is None:
            return
        lo, hi = need
        fidelity = int(self.decider.snap.meta.get("fidelity_minutes", 1440))
        try:
            points = await asyncio.to_thread(
                self.poller.prices, token, lo * DAY, (hi + 1) * DAY - 1, fidelity
            )
        except PolymarketError:
            self.status.poll_errors += 1
            return  # the marks fall back to the day's last print; the next candidate asks again
        self.decider.add_history(token, points, hi)
        for day_, price in self.decider.history[token].items():
            if lo <= day_ <= hi:
                commit.history[(token, day_)] = price
        commit.history_through[token] = hi

    async def _decide(
        self, order: Order, commit: Commit, now: float, frames: _Frames, tick_perf: float, screened=None
    ) -> None:
        d, cfg = self.decider, self.cfg
        due = order.ts + d.latency
        late = order.received_at > due + cfg.grace_s + self.market.lag_s
        age = order.received_at - order.ts
        if order.side == "BUY" and age > cfg.max_fill_age_s:
            dec = d.stale(order, age, cfg.max_fill_age_s)
            self.status.stale += 1
        else:
            if order.side == "BUY" and screened is None:
                screened = d.candidate(order)
            if screened is not None and screened["stage_reached"].iloc[0] == "portfolio":
                day = due // DAY
                await self._history(order.token_id, day, commit)
            dec = d.decide(order, screened)
        done = time.perf_counter()
        trigger = frames.trigger(due + cfg.grace_s, tick_perf)
        order_row = dec.get("order") or {}
        fill = dec.get("fill") or {}
        record = {
            "decision_key": dec["decision_key"], "seq": self.store.next_seq("decisions"),
            "fill_key": str(dec["fill_key"]), "wallet": dec["wallet"], "token_id": dec["token_id"],
            "side": dec["side"], "ts": int(dec["ts"]), "day": int(dec["day"]), "legs": dec["legs"],
            "size": dec["size"], "whale_price": dec["whale_price"], "stage_reached": dec["stage_reached"],
            "copied": int(bool(dec["copied"])), "reason": dec.get("reason"),
            **{k: _num(dec.get(k)) for k in ("copy_price", "daily_notional", "days_to_resolution", "wqs",
                                             "edge_at_copy", "slippage", "whale_volatility")},
            "nav": _num(order_row.get("nav")), "correlation": _num(order_row.get("correlation")),
            "fraction": _num(order_row.get("fraction")),
            "whale_sold_fraction": _num(dec.get("fraction")) if order.side == "SELL" else None,
            "shares": _num(abs(fill["shares"]) if fill else order_row.get("shares")),
            "price": _num(fill.get("price")), "notional": _num(abs(fill["shares"]) * fill["price"] if fill else None),
            "fee": _num(fill.get("fee")), "sources": ",".join(sorted(order.sources)),
            "received_at": order.received_at, "decided_at": now, "decided_wall": time.time(),
            "first_seen_to_decision_s": done - order.received_wall if math.isfinite(order.received_wall) else None,
            "frame_to_decision_s": done - trigger, "fill_to_decision_s": now - order.ts, "late": int(late),
        }  # fmt: skip
        commit.decisions.append(record)
        if fill and order.side == "SELL":
            self._fill_decision[id(fill)] = record["decision_key"]  # the mirrored sell's intent names it
        self.status.decisions += 1
        self.status.copied += int(bool(dec["copied"]) and order.side == "BUY")
        self.decide_ms.add(1000 * (done - trigger))
        self.e2e_s.add(now - order.ts)
        if self.on_decision is not None:
            self.on_decision(record)

    async def _close_day(self, day: int, commit: Commit) -> None:
        d = self.decider
        for token in d.held_tokens():
            await self._history(token, day + 1, commit)
        held = sorted({d.markets.get(t, {}).get("condition_id") for t in d.held_tokens()} - {None})
        if held and self.cfg.data_url:
            with contextlib.suppress(PolymarketError):
                for m in await asyncio.to_thread(self.poller.markets, held):
                    self._market_update(m)
        d.end_day(day)
        commit.state["day"] = d.day
        _settle_heap()

    def _market_update(self, m: dict) -> None:
        """A held market as Gamma shows it now: a resolution learnt live settles the position at the day's end."""
        try:
            tokens = json.loads(m.get("clobTokenIds") or "[]")
            prices = [float(x) for x in json.loads(m.get("outcomePrices") or "[]")]
        except (ValueError, TypeError):
            return
        resolved = bool(m.get("closed")) and m.get("umaResolutionStatus") == "resolved"
        for token, price in zip(tokens, prices, strict=False):
            known = self.decider.markets.get(token)
            known_ts = _num((known or {}).get("resolved_ts"))
            if known is None or not resolved or known_ts is not None:
                continue  # unknown, unresolved, or already known resolved
            ts = _closed_ts(m.get("closedTime")) or self.clock()
            self.decider.on_market(token, {"resolved_ts": ts, "payout": price})

    def _book_outputs(self, commit: Commit) -> None:
        """The book's new fills, NAV rows and alerts since the last tick, and the intents they need."""
        book = self.decider.book
        commit.book_log = list(book.log)
        book.log.clear()
        if self._emitted is None:  # read from the store once per process
            self._emitted = [self.store.state(k, 0) for k in ("n_fills", "n_nav", "n_alerts")]
        n_fills, n_nav, n_alerts = self._emitted
        new_fills = book.fills[n_fills:]
        for f in new_fills:
            commit.paper_fills.append({"seq": self.store.next_seq("paper_fills"), **{k: _plain(v) for k, v in f.items()},
                                       "key": str(f["key"])})  # fmt: skip
        for r in book.nav_rows[n_nav:]:
            commit.nav.append({k: _plain(v) for k, v in r.items()})
        for a in book.alerts[n_alerts:]:
            commit.alerts.append({"seq": self.store.next_seq("alerts"), **a})
        commit.state.update(n_fills=len(book.fills), n_nav=len(book.nav_rows), n_alerts=len(book.alerts))
        self._emitted = [len(book.fills), len(book.nav_rows), len(book.alerts)]
        orders = [f for f in new_fills if f["kind"] in ORDER_KINDS]
        if orders:
            wallets = {str(p.key): p.wallet for p in [*book.closed, *book.open.values()]}
            frame = pd.DataFrame({"whale_fill": [str(f["key"]) for f in orders], "kind": [f["kind"] for f in orders],
                                  "ts": [f["ts"] for f in orders], "token_id": [f["token_id"] for f in orders],
                                  "shares": [f["shares"] for f in orders], "price": [f["price"] for f in orders],
                                  "copied_wallet": [wallets.get(str(f["key"])) for f in orders]})  # fmt: skip
            keys = {str(r["fill_key"]): r["decision_key"] for r in commit.decisions}
            for it, f in zip(intents_frame(frame, taken=self.store.intents_with_base).to_dict("records"), orders,
                             strict=True):  # fmt: skip
                # an entry's decision is its whale order's; a mirrored sell's, the sell's; a stop's or a time exit's,
                # none (the book's own)
                it["decision_key"] = (keys.get(it["intent_id"].split("-")[0], "") if f["kind"] == "entry"
                                      else self._fill_decision.get(id(f), ""))  # fmt: skip
                it["emitted_at"] = None
                commit.intents.append(it)
                commit.alerts.append({"seq": self.store.next_seq("alerts"), "day": f["day"], "kind": f"intent_{f['kind']}",
                                      "message": f"{it['side']} {it['shares']:g} shares of {it['token_id']} at "
                                      f"{it['limit_price']:.3f} (copying {it['copied_wallet']}): {it['intent_id']}"})  # fmt: skip
            self.status.intents += len(orders)
        self._fill_decision.clear()

    def _write_intents(self, intents: list[dict]) -> None:
        if not intents:
            return
        lines = "".join(json.dumps({k: v for k, v in i.items() if k != "emitted_at"}) + "\n" for i in intents)
        with open(self.cfg.intents_path, "a") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())

    def _emit(self, commit: Commit) -> None:
        """After the commit: the intents to the JSONL stream, then the alerts to the webhook (at most once)."""
        if commit.intents:
            self._write_intents(commit.intents)
            self.store.mark_emitted([i["intent_id"] for i in commit.intents])
        if commit.alerts and self.alerts is not None:
            alerts = [{"day": a["day"], "kind": a["kind"], "message": a["message"]} for a in commit.alerts]
            if self.alerts.send(alerts, _Log(self.out)):
                self.store.mark_posted([a["seq"] for a in commit.alerts])

    def _reload(self, generation: str, commit: Commit, now: float) -> None:
        """A batch completed: its universe is tracked from now on, its scores decide, and the loss events its data
        covers are closed (the batch holds those fills)."""
        try:
            snap = snapshot.load(self.cfg.snapshot_root, generation)
        except (FileNotFoundError, OSError, ValueError) as exc:
            print(f"whalecopy live: snapshot {generation} not readable yet ({exc}); keeping {self.generation}",
                  file=self.out, flush=True)  # fmt: skip
            return
        d = self.decider
        added = d.snap_update(snap)
        self.generation = generation
        self.status.snapshot = generation
        for w in set(self.coverage.boundary) - d.tracked:  # no longer tracked: nothing to prove for it
            del self.coverage.boundary[w]
        new = sorted(d.tracked - set(self.coverage.boundary))
        self.coverage.track(new, snap.data_end_ts)
        commit.boundaries.update({w: self.coverage.boundary[w] for w in new})
        # what the batch holds of the wallets it adds, since their positions were taken: their fills now
        rows = d.recent_fills_of(added)
        known = self.store.known_identities([_identity_text(r) for r in rows]) if rows else set()
        for row in rows:
            if _identity_text(row) not in known:
                self._observe({**row, "source": "snapshot"}, commit, received_at=now, perf=time.perf_counter(),
                              applied=True)  # fmt: skip
        self.status.tracked_wallets = len(d.tracked)
        self._close_covered(snap, commit, now)
        self.poll_first.extend(new)
        self.reconcile.set()
        _settle_heap()

    def _close_covered(self, snap: Snapshot, commit: Commit, now: float) -> None:
        """The loss events a batch snapshot's data covers are closed: the batch holds those fills."""
        by = f"batch snapshot {snap.meta['generation']}"
        for e in self.coverage.close_losses_through(snap.data_end_ts, now, by):
            rows = self.store.rows("SELECT id FROM loss_events WHERE reason = ? AND start_ts = ? AND closed_at IS NULL",
                                   [e.reason, e.start_ts])  # fmt: skip
            for r in rows:
                commit.losses_closed.append({"id": r["id"], "closed_at": now, "closed_by": e.closed_by})

    # ------------------------------------------------------------------------------------------------ run
    async def _process(self) -> None:
        """One tick at a time until ``stop``: a tick is never cut short (``run`` waits for the one in flight)."""
        while not self.stop.is_set():
            item = await self.queue.get()
            # a millisecond for the socket readers to hand over what has already arrived: a burst is one tick
            await asyncio.sleep(0.001)
            items = [item]
            while len(items) < 20_000:
                try:
                    items.append(self.queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            self.status.max_backlog = max(self.status.max_backlog, len(items))
            t0 = time.perf_counter()
            try:
                await self._handle(items)
            # the store or the engine failed: stop rather than decide on a torn state
            except Exception as exc:
                self.fatal = f"{type(exc).__name__}: {exc}"
                self.status.state = model.FAILED
                self.stop.set()
                raise
            self.status.max_tick_ms = max(self.status.max_tick_ms, 1000 * (time.perf_counter() - t0))

    async def run(self, until_ts: float | None = None, install_signals: bool = True) -> model.Status:
        """Run until SIGINT/SIGTERM, ``stop`` is set, or market time passes ``until_ts``. On the way out the tick
        in flight finishes (within ``stop_wait_s``), then what is queued is handled in one last tick; a tick that
        cannot finish is abandoned uncommitted, as after a crash (a restart resumes from the store)."""
        cfg = self.cfg
        with hold_lock(cfg.lock_path):
            self._open()
            _settle_heap()
            self._cpu0 = time.process_time()
            loop = asyncio.get_running_loop()
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.add_signal_handler(sig, self.stop.set)
            rtds = RtdsClient(cfg.rtds_url, self._on_frame, self._on_event, ping_s=cfg.ping_wall_s,
                              watchdog_s=cfg.watchdog_wall_s)  # fmt: skip
            sources = [asyncio.create_task(t) for t in (rtds.run(self.stop), self._poll_task(), self._snapshot_task(),
                                                        self._tick_task(), self._status_task())]  # fmt: skip
            processor = asyncio.create_task(self._process())
            self.reconcile.set()
            try:
                while not self.stop.is_set():
                    await asyncio.sleep(0.05)
                    if until_ts is not None and self.clock() >= until_ts:
                        break
                    failed = [t for t in [*sources, processor] if t.done() and t.exception() is not None]
                    if failed:
                        raise failed[0].exception()
            finally:
                self.stop.set()
                for t in sources:
                    t.cancel()
                await asyncio.gather(*sources, return_exceptions=True)
                finished = await self._finish(processor)
                try:
                    if finished and self.fatal is None:
                        left = [("tick",)]
                        while not self.queue.empty():
                            left.append(self.queue.get_nowait())
                        await self._handle(left)
                except Exception as exc:
                    self.fatal = f"{type(exc).__name__}: {exc}"
                    self.status.state = model.FAILED
                finally:
                    self.poller.close()
                    self.store.close()
            if self.fatal is not None:
                print(f"whalecopy live: failed: {self.fatal}", file=self.out, flush=True)
            self.print_status()
        return self.status

    async def _finish(self, processor: asyncio.Task) -> bool:
        """Let the tick in flight commit; True when it did (or none was in flight)."""
        if not processor.done():
            self.queue.put_nowait(("tick",))  # wake it if it waits for an item
            done, _ = await asyncio.wait({processor}, timeout=self.cfg.stop_wait_s)
            if not done:
                processor.cancel()
                await asyncio.gather(processor, return_exceptions=True)
                print(f"whalecopy live: the tick in flight did not finish within {self.cfg.stop_wait_s:g} s: left "
                      "uncommitted (a restart resumes from the store)", file=self.out, flush=True)  # fmt: skip
                return False
        return processor.cancelled() or processor.exception() is None


class _Log:
    def __init__(self, out):
        self.out = out

    def warning(self, msg: str) -> None:
        print(f"whalecopy live: {msg}", file=self.out, flush=True)


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _settle_heap() -> None:
    """Collect, then freeze what is left out of the collector's sight. The snapshot and the book are hundreds of
    thousands of long-lived objects (220,000 on the demo's snapshot): a full collection over them took 95-100 ms
    on this machine, a pause that would fall inside a tick whenever the collector chose. Called once the state is
    loaded, after a new generation and at each day's end, so a collection only walks what came since (frozen
    objects are still freed by reference counting; only cyclic garbage among them would be kept)."""
    gc.collect()
    gc.freeze()


def _closed_ts(value) -> float | None:
    """Gamma's ``closedTime`` as epoch seconds (None when absent or unreadable: the loop's clock stands in)."""
    if not value:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if ts is pd.NaT:
        return None
    return (ts if ts.tzinfo else ts.tz_localize("UTC")).timestamp()


def _stored_row(f: dict) -> dict:
    """A stored fill as the ``raw.trades``-shaped row it was made from."""
    return {"proxy_wallet": f["wallet"], "side": f["side"], "asset": f["token_id"], "condition_id": f["condition_id"],
            "size": f["size"], "price": f["price"], "ts": f["ts"], "outcome_index": f["outcome_index"],
            "transaction_hash": f["transaction_hash"], "fill_key": int(f["fill_key"]), "source": f["source"]}  # fmt: skip
