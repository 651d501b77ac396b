"""The live loop's pure logic: frames to fills, one identity, dedupe, the market clock, coverage and loss events, the
loop's state, latency and the status line. No I/O (no sockets, no files, no clock reads): everything takes the
time it needs as an argument, so each rule is tested on its own (tests/unit/test_live_model.py).

Sources (../shared/polymarket_realtime.md): RTDS ``activity`` frames (types ``trades``, every fill with taker and
makers, and ``orders_matched``, the taker only) and the Data API ``/trades?user=`` polls. Both carry the same
trade object, so both go through one validation (``assets/ingest/records.py:parse_trades``, the batch's own) after
the one live-only step: RTDS sends ``proxyWallet`` in mixed case, and it is lower-cased first.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from assets.ingest.clients import Page
from assets.ingest.records import (
    FUTURE_SLACK_S,
    HEX64_RE,
    MAX_SIZE,
    MAX_TOKEN_ID,
    MILLIS_TS,
    MIN_TS,
    TOKEN_RE,
    WALLET_RE,
    Batch,
    parse_trades,
)

RTDS_TYPES = ("trades", "orders_matched")
#: the simulated feed's in-band clock (``live/sim_market.py``): market time moves on between its sparse trades, and
#: the replay's end is marked in order with the frames before it. The real feed never sends this topic.
SIM_CLOCK_TOPIC = "whalecopy_sim"
TRADE_SHAPE = ("proxyWallet", "transactionHash", "asset", "side", "size", "price", "timestamp")

#: the loop's states (polymarket-insider-tracker's, polymarket_realtime.md §4)
RUNNING, DEGRADED, POSSIBLE_DATA_LOSS, FAILED = "running", "degraded", "possible-data-loss", "failed"

#: the stage a live decision reached (``live.decisions.stage_reached``)
DECISION_STAGES = ("whale", "trade", "portfolio", "copied", "skipped_stale", "exit", "not_held")

#: why a stretch of time may hold fills the loop never saw
LOSS_REASONS = (
    "horizon-expired",  # a gap older than the recovery horizon before a poll could prove it closed
    "restart-beyond-horizon",  # the loop was down longer than the horizon
    "start-beyond-horizon",  # the batch's snapshot ends longer than the horizon before the first start
    "continuity-mismatch",  # a poll could not reach back to what was already seen, even with a recovery request
    "feed-gap",  # the global feed (flow, prints, marks of other wallets) was not observed
)


# ------------------------------------------------------------------------------------------------ frames


class Frame(NamedTuple):
    """One RTDS frame, routed. ``kind``: ``trade`` (``payloads`` holds the trade objects), ``pong``, ``empty``,
    ``other`` (a valid frame of another topic, or an acknowledgement), ``bad`` (``reason`` says why), ``clock``
    (the simulated feed's market time, ``clock_ts``; ``end``: the replay is over)."""

    kind: str
    rtds_type: str | None = None  # trades | orders_matched | None (the envelope did not say: routed by shape)
    payloads: tuple[dict, ...] = ()
    reason: str | None = None
    server_ms: int | None = None
    clock_ts: float | None = None
    end: bool = False
    through: float | None = None  # the end frame: the replay held the fills before this time


def _is_trade(obj: Any) -> bool:
    return isinstance(obj, dict) and all(k in obj for k in TRADE_SHAPE)


def route_frame(text: str | bytes) -> Frame:
    """Route one frame. The live server has been seen omitting ``topic``/``type``, so a payload shaped like a trade
    is a trade whatever the envelope says; the first frame after subscribing can be empty. Never raises."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            return Frame("bad", reason="not_utf8")
    stripped = text.strip()
    if not stripped:
        return Frame("empty")
    if stripped.lower() == "pong":
        return Frame("pong")
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return Frame("bad", reason="non_json_frame")
    if not isinstance(doc, dict):
        return Frame("bad", reason="not_an_object")
    topic, rtds_type = doc.get("topic"), doc.get("type")
    payload = doc.get("payload")
    if (
        topic == SIM_CLOCK_TOPIC
        and isinstance(payload, dict)
        and isinstance(payload.get("market_ts"), int | float)
    ):
        through = payload.get("through")
        return Frame("clock", clock_ts=float(payload["market_ts"]), end=rtds_type == "end",
                     through=float(through) if isinstance(through, int | float) else None)  # fmt: skip
    server_ms = doc.get("timestamp") if isinstance(doc.get("timestamp"), int) else None
    items = payload if isinstance(payload, list) else [payload] if payload is not None else []
    trades = tuple(p for p in items if _is_trade(p))
    if topic not in (None, "activity") or (rtds_type is not None and rtds_type not in RTDS_TYPES):
        return Frame("other", rtds_type if isinstance(rtds_type, str) else None, server_ms=server_ms)
    if trades:
        return Frame("trade", rtds_type if rtds_type in RTDS_TYPES else None, trades, server_ms=server_ms)
    if payload is None:
        return Frame("other", server_ms=server_ms)  # an acknowledgement, a heartbeat
    return Frame("bad", reason="payload_not_a_trade", server_ms=server_ms)


# ------------------------------------------------------------------------------------------------ fills

#: the fill's full identity (polymarket_realtime.md §3): there is no trade id
IDENTITY = ("transaction_hash", "proxy_wallet", "condition_id", "asset", "side", "outcome_index", "price", "size",
            "ts")  # fmt: skip


def lower_wallets(records: Iterable[Any]) -> list[Any]:
    """RTDS's ``proxyWallet`` is mixed case: lower-case it (the one live-only normalisation)."""
    out = []
    for r in records:
        if isinstance(r, dict) and isinstance(r.get("proxyWallet"), str):
            r = {**r, "proxyWallet": r["proxyWallet"].lower()}
        out.append(r)
    return out


_WALLET, _HEX64, _TOKEN = re.compile(WALLET_RE), re.compile(HEX64_RE), re.compile(TOKEN_RE)
_TEXT_FIELDS = {"outcome": "outcome", "title": "title", "slug": "slug", "eventSlug": "event_slug", "name": "name",
                "pseudonym": "pseudonym"}  # fmt: skip


def _clean_text(v: Any) -> bool:
    return v is None or (isinstance(v, str) and "\x00" not in v)


def _finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def fast_row(r: Any, now_ts: int) -> dict | None:
    """A trade object that the batch's ``parse_trades`` accepts as it stands, as the row it makes of it; None for
    anything else (a missing field, a text where a number belongs, a bad id...), which then goes through
    ``parse_trades`` itself. So the live path is the batch's validation, at a few microseconds for the clean rows
    that nearly every frame carries (``tests/unit/test_live_model.py`` holds the two to the same verdicts)."""
    if not isinstance(r, dict):
        return None
    w, c, a, side, tx = (
        r.get("proxyWallet"),
        r.get("conditionId"),
        r.get("asset"),
        r.get("side"),
        r.get("transactionHash"),
    )
    size, price, ts, oi = r.get("size"), r.get("price"), r.get("timestamp"), r.get("outcomeIndex")
    if not (isinstance(w, str) and _WALLET.fullmatch(w) and isinstance(c, str) and _HEX64.fullmatch(c)
            and isinstance(a, str) and _TOKEN.fullmatch(a) and (len(a) < 78 or a <= MAX_TOKEN_ID)
            and (tx is None or (isinstance(tx, str) and _HEX64.fullmatch(tx))) and side in ("BUY", "SELL")):  # fmt: skip
        return None
    if not (_finite_number(size) and 0 < size <= MAX_SIZE and _finite_number(price) and 0 <= price <= 1):
        return None
    if not (
        _finite_number(ts)
        and ts == math.floor(ts)
        and MIN_TS <= ts < MILLIS_TS
        and ts <= now_ts + FUTURE_SLACK_S
    ):
        return None
    if not (oi is None or (isinstance(oi, int) and not isinstance(oi, bool) and abs(oi) < 2**31)):
        return None
    texts = {k: r.get(k) for k in _TEXT_FIELDS}
    if not all(_clean_text(v) for v in texts.values()):
        return None
    return {"proxy_wallet": w, "side": side, "asset": a, "condition_id": c, "size": float(size),
            "price": float(price) + 0.0, "ts": int(ts), "outcome": texts["outcome"], "outcome_index": oi,
            "title": texts["title"], "slug": texts["slug"], "event_slug": texts["eventSlug"], "name": texts["name"],
            "pseudonym": texts["pseudonym"], "transaction_hash": tx}  # fmt: skip


class Normalised(NamedTuple):
    rows: list[dict]  # accepted, ``raw.trades``-shaped
    positions: list[int]  # each accepted row's position among the records
    rejected: list[dict]  # quarantine rows (entity, source, origin, reason_code, reasons, record, record_ref)


def normalise(records: Sequence[Any], origins: Sequence[str], *, source: str, now_ts: int,
              fast: bool = True) -> Normalised:  # fmt: skip
    """RTDS payloads and poll rows to fills, by the batch's own rules: the clean rows on the fast path, the rest
    through ``parse_trades`` (its accepted rows and its rejected rows with their reasons). ``fast=False``: every
    row through ``parse_trades`` (the benchmark's comparison)."""
    lowered = lower_wallets(records)
    rows: list[tuple[int, dict]] = []
    slow: list[int] = []
    for i, r in enumerate(lowered):
        row = fast_row(r, now_ts) if fast else None
        if row is None:
            slow.append(i)
        else:
            rows.append((i, row))
    rejected: list[dict] = []
    if slow:
        batch = Batch()
        for i in slow:
            r = lowered[i]
            batch.add(Page(origins[i], [r]))  # decoded JSON: a string in it is valid JSON, not an object
        parsed = parse_trades(batch, source=source, now_ts=now_ts)
        rows += [
            (slow[int(j)], row)
            for j, row in zip(parsed.accepted_rows, parsed.accepted.to_pylist(), strict=True)
        ]
        rejected = parsed.rejected.to_pylist()
    rows.sort(key=lambda x: x[0])
    return Normalised([r for _, r in rows], [i for i, _ in rows], rejected)


def fill_key(row: dict) -> int:
    """The batch's natural key of a fill (``assets/ingest/store.py:FILL_KEY_SQL``: ``md5_number`` of the identity
    joined by ``|``, doubles as DuckDB renders them, which is Python's ``repr``), bit for bit (tested)."""
    text = "|".join([row.get("transaction_hash") or "", row["proxy_wallet"], row["asset"], row["side"],
                     repr(row["size"]), repr(row["price"]), str(row["ts"])])  # fmt: skip
    return int.from_bytes(hashlib.md5(text.encode()).digest(), "little")


def identity(row: dict) -> tuple:
    """The identity of a ``raw.trades``-shaped row (a dict from ``Table.to_pylist``)."""
    return tuple(row.get(k) for k in IDENTITY)


def decision_key(wallet: str, transaction_hash: str | None, token_id: str, side: str, fill_key: int) -> str:
    """At most one decision per leader order (``wallet|txHash|tokenId|side``); a fill with no hash is its own."""
    return f"{wallet}|{transaction_hash or f'fill:{fill_key}'}|{token_id}|{side}"


class SeenSet:
    """Identities seen within a horizon of market time (a duplicate comes within seconds, from the other RTDS type
    or a poll). Older identities are forgotten; the tracked wallets' fills are also deduplicated in the store."""

    def __init__(self, horizon_s: float):
        self.horizon_s = horizon_s
        self._seen: OrderedDict[tuple, int] = OrderedDict()

    def add(self, key: tuple, ts: int) -> bool:
        """True if ``key`` is new (and remembers it)."""
        if key in self._seen:
            return False
        self._seen[key] = ts
        return True

    def __contains__(self, key: tuple) -> bool:
        return key in self._seen

    def forget_before(self, ts: float) -> int:
        """Forget identities of fills older than ``ts`` minus the horizon; returns how many."""
        cut, n = ts - self.horizon_s, 0
        while self._seen:
            k, t = next(iter(self._seen.items()))
            if t >= cut:
                break
            self._seen.popitem(last=False)
            n += 1
        return n

    def __len__(self) -> int:
        return len(self._seen)


# ------------------------------------------------------------------------------------------------ clock


class MarketClock:
    """Market time as the feed shows it: the newest payload timestamp seen, or, when the feed is silent, the
    wall clock less ``lag_s`` (the most a healthy feed lags). An order is decided when this clock passes its
    due time by ``grace_s``: by then every print at or before it has arrived."""

    def __init__(self, lag_s: float, grace_s: float):
        self.lag_s, self.grace_s = lag_s, grace_s
        self.feed_ts = -math.inf

    def saw(self, ts: float) -> None:
        self.feed_ts = max(self.feed_ts, ts)

    def now(self, wall: float) -> float:
        return max(self.feed_ts, wall - self.lag_s)

    def settled_through(self, wall: float) -> float:
        """Every fill at or before this time has arrived (or will be reconciled as late)."""
        return self.now(wall) - self.grace_s


# ------------------------------------------------------------------------------------------------ coverage


@dataclass
class LossEvent:
    reason: str
    start_ts: float
    end_ts: float
    detail: str
    wallets: tuple[str, ...] = ()
    opened_at: float = 0.0
    closed_at: float | None = None
    closed_by: str | None = None

    def __post_init__(self) -> None:
        if self.reason not in LOSS_REASONS:
            raise ValueError(f"unknown loss reason {self.reason!r}: one of {LOSS_REASONS}")


@dataclass
class Gap:
    """A stretch when RTDS did not deliver (disconnected, or stalled until the watchdog tripped): it is closed when
    every tracked wallet's poll boundary has passed its end."""

    start_ts: float
    end_ts: float | None = None  # None: still open (the feed is down)
    reason: str = "disconnect"


class PollOutcome(NamedTuple):
    advanced_to: float | None  # the wallet's new complete-through boundary, None when not proven
    needs_recovery: bool  # a full page whose oldest row is newer than the boundary: page back once more
    loss: LossEvent | None


def poll_continuity(
    boundary: float,
    requested_at: float,
    api_lag_s: float,
    rows_ts: Sequence[int],
    page_limit: int,
    recovered: bool,
) -> PollOutcome:
    """What one poll of a wallet proves (the complete-through rule of polymarket-insider-tracker).

    A poll at ``requested_at`` returns the wallet's newest ``page_limit`` fills as the API knew them, ``api_lag_s``
    behind. It proves the wallet complete through ``requested_at - api_lag_s`` when it reaches back to what was
    already covered: the page is not full (it holds every fill since), or its oldest row is at or before
    ``boundary``. Otherwise one recovery request pages further back (``recovered=False``); if that still does not
    reach the boundary, the stretch between is a ``continuity-mismatch`` loss."""
    through = requested_at - api_lag_s
    if len(rows_ts) < page_limit or (rows_ts and min(rows_ts) <= boundary):
        return PollOutcome(max(boundary, through), False, None)
    if not recovered:
        return PollOutcome(None, True, None)
    oldest = min(rows_ts)
    loss = LossEvent("continuity-mismatch", boundary, float(oldest), f"the poll and one recovery page reached back "
                     f"only to {oldest}; fills between {boundary:.0f} and {oldest} may be missing", opened_at=requested_at)  # fmt: skip
    return PollOutcome(max(boundary, through), False, loss)


@dataclass
class Coverage:
    """Per-wallet complete-through boundaries, the RTDS gaps still to prove closed, and the loss events.

    - ``boundary[w]``: every fill of ``w`` at or before it is known (the poll proved it, or the snapshot holds it);
    - an RTDS gap is *closed* when every tracked wallet's boundary has passed its end: nothing of the tracked
      wallets is missing from it; a gap older than ``horizon_s`` before that becomes a ``horizon-expired`` loss;
    - loss events stay open until a batch snapshot whose data covers them is loaded (the batch has those fills)."""

    horizon_s: float
    boundary: dict[str, float] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    losses: list[LossEvent] = field(default_factory=list)

    def track(self, wallets: Iterable[str], since: float) -> None:
        for w in wallets:
            self.boundary.setdefault(w, since)

    def open_gap(self, ts: float, reason: str) -> None:
        if not self.gaps or self.gaps[-1].end_ts is not None:
            self.gaps.append(Gap(ts, None, reason))

    def close_gap(self, ts: float) -> None:
        if self.gaps and self.gaps[-1].end_ts is None:
            self.gaps[-1].end_ts = ts

    def min_boundary(self) -> float:
        return min(self.boundary.values(), default=math.inf)

    def settle(self, now: float) -> list[LossEvent]:
        """Drop the gaps the polls have proved closed; turn the ones past the horizon into loss events (returned)."""
        covered, new = self.min_boundary(), []
        keep = []
        for g in self.gaps:
            if g.end_ts is not None and covered >= g.end_ts:
                continue
            if now - g.start_ts > self.horizon_s:
                end = g.end_ts if g.end_ts is not None else now
                lost = tuple(sorted(w for w, b in self.boundary.items() if b < end))
                event = LossEvent("horizon-expired", g.start_ts, end, f"an RTDS {g.reason} from {g.start_ts:.0f} "
                                  f"was not proven closed by the polls within {self.horizon_s:g} s", lost, now)  # fmt: skip
                new.append(event)
                if g.end_ts is None:
                    keep.append(Gap(now, None, g.reason))  # the feed is still down: watch the rest
                continue
            keep.append(g)
        self.gaps = keep
        self.losses.extend(new)
        return new

    def add_loss(self, event: LossEvent) -> None:
        self.losses.append(event)

    def open_losses(self) -> list[LossEvent]:
        return [e for e in self.losses if e.closed_at is None]

    def close_losses_through(self, data_end_ts: float, now: float, by: str) -> list[LossEvent]:
        """A batch snapshot whose data runs through ``data_end_ts`` holds every fill of the stretches before it."""
        closed = []
        for e in self.open_losses():
            if e.end_ts <= data_end_ts:
                e.closed_at, e.closed_by = now, by
                closed.append(e)
        return closed


def loop_state(*, fatal: bool, open_losses: int, rtds_ok: bool, polls_ok: bool, gaps_open: int) -> str:
    """failed > possible-data-loss > degraded > running."""
    if fatal:
        return FAILED
    if open_losses:
        return POSSIBLE_DATA_LOSS
    if not rtds_ok or not polls_ok or gaps_open:
        return DEGRADED
    return RUNNING


def start_coverage(
    wallets: Iterable[str], *, stored: dict[str, float], snapshot_end: float, now: float, horizon_s: float,
    restarted: bool,
) -> tuple[dict[str, float], list[LossEvent]]:  # fmt: skip
    """The boundary each tracked wallet starts from, and the loss events of starting late. A wallet resumes from
    its stored boundary (after a restart) or the batch snapshot's end (a new wallet, or the first start), but
    never from further back than the horizon: older stretches are recorded as lost, never skipped silently."""
    floor_ts = now - horizon_s
    out, late = {}, {}
    for w in wallets:
        b = max(stored.get(w, snapshot_end), snapshot_end)
        if b < floor_ts:
            late[w] = b
            b = floor_ts
        out[w] = b
    events = []
    if late:
        lo = min(late.values())
        reason = "restart-beyond-horizon" if restarted else "start-beyond-horizon"
        events.append(LossEvent(reason, lo, floor_ts, f"{len(late)} wallets last covered before the "
                                f"{horizon_s:g}-second horizon; the next batch sync holds their fills",
                                tuple(sorted(late)), now))  # fmt: skip
    return out, events


# ------------------------------------------------------------------------------------------------ latency


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-100), linear interpolation (numpy's default); NaN when empty."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Latencies:
    """The last ``n`` latencies of one kind (seconds), for the status line's p50 and p99."""

    def __init__(self, n: int = 2000):
        self.values: deque[float] = deque(maxlen=n)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def p(self, q: float) -> float:
        return percentile(list(self.values), q)


@dataclass
class Status:
    state: str = RUNNING
    clock_ts: float = math.nan
    frames: int = 0
    fills_seen: int = 0  # distinct fills (every wallet)
    tracked_fills: int = 0
    duplicates: int = 0
    rejected: int = 0
    decisions: int = 0
    copied: int = 0
    intents: int = 0
    stale: int = 0
    pending: int = 0
    reconnects: int = 0
    polls: int = 0
    poll_errors: int = 0
    open_losses: int = 0
    tracked_wallets: int = 0
    decide_p50_ms: float = math.nan  # frame received -> decision committed
    decide_p99_ms: float = math.nan
    e2e_p50_s: float = math.nan  # the fill's own timestamp -> decision committed
    e2e_p99_s: float = math.nan
    nav: float = math.nan
    snapshot: str = ""
    max_backlog: int = 0  # the most frames and poll pages waiting at once
    max_tick_ms: float = 0.0  # the longest tick (processing one backlog)
    cpu_s: float = 0.0  # this process's CPU time since the loop started (start-up and imports not counted)

    def line(self) -> str:
        def ms(x: float) -> str:
            return "-" if x != x else f"{x:.1f}"

        return (f"[{self.state}] {self.fills_seen:,} fills ({self.tracked_fills:,} tracked, {self.duplicates:,} dup, "
                f"{self.rejected:,} rejected) | {self.decisions:,} decisions, {self.copied:,} copied, "
                f"{self.intents:,} intents, {self.stale:,} stale, {self.pending:,} pending | frame->decision p50 "
                f"{ms(self.decide_p50_ms)} ms p99 {ms(self.decide_p99_ms)} ms | fill->decision p50 "
                f"{ms(self.e2e_p50_s)} s p99 {ms(self.e2e_p99_s)} s | {self.reconnects} reconnects, "
                f"{self.open_losses} open losses | NAV {ms(self.nav)}")  # fmt: skip

    def as_json(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return out


# ------------------------------------------------------------------------------------------------ due queue


class DueQueue:
    """Work due at a market time, released in a fixed order: ``(due, rank, key)``."""

    def __init__(self) -> None:
        self._heap: list[tuple] = []

    def push(self, due: float, rank: int, key: Any, item: Any) -> None:
        heapq.heappush(self._heap, (due, rank, key, id(item), item))

    def pop_through(self, ts: float) -> list[Any]:
        out = []
        while self._heap and self._heap[0][0] <= ts:
            out.append(heapq.heappop(self._heap)[-1])
        return out

    def next_due(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def __len__(self) -> int:
        return len(self._heap)
