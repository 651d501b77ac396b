"""The dashboard's two sources, read-only: the warehouse (DuckDB) and the live store (SQLite in WAL mode).

Neither is ever held open between reads. The warehouse allows one writing process and a reader's shared lock
would make a batch run wait, so it is read in one short connection per page and only once the file has been
quiet for ``quiet_s`` (a batch writing it is left alone); while it is busy the page shows what was last read,
and says so. The live store is read through :func:`live.store.connect_readonly`, which never blocks the loop.
Each failure is a :class:`SourceUnavailable` whose message says what is wrong and what to run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pandas as pd


class SourceUnavailable(RuntimeError):
    """A source cannot be read now: ``kind`` is ``missing`` (not built yet) or ``busy`` (a writer holds it)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Read:
    """The frames of one read and when they were read (epoch seconds); ``stale`` says why they may be older than
    the file (it is being written), else None."""

    frames: dict[str, pd.DataFrame]
    read_at: float
    stamp: tuple = ()
    stale: str | None = None


def _stamp(path: Path) -> tuple:
    """Changes whenever the database file or its write-ahead log does."""
    out = []
    for p in (path, Path(f"{path}.wal")):
        try:
            s = p.stat()
            out.append((s.st_mtime_ns, s.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class Warehouse:
    """Reads of the DuckDB warehouse, cached per (queries, parameters) until the file changes; the ``max_cached``
    most recent reads are kept (each whale drilled into is a read of its own)."""

    def __init__(self, path: Path, quiet_s: float = 3.0, max_cached: int = 64):
        self.path = Path(path)
        self.quiet_s = quiet_s
        self.max_cached = max_cached
        self._cache: dict[tuple, Read] = {}
        self._lock = threading.Lock()

    def read(self, queries: Mapping[str, str], params: Mapping[str, list] | None = None) -> Read:
        """Every query in one read-only connection, closed at once; ``params`` binds a query's ``?`` by name.

        Raises :class:`SourceUnavailable`: ``missing`` when there is no file or it lacks a table or column a
        query reads (a page without its table cannot say anything true); ``busy`` when the file changed less
        than ``quiet_s`` ago or a batch run holds its write lock, and nothing was read before. With an earlier
        read, returns that instead, with ``stale`` saying how old it is."""
        if not self.path.exists():
            raise SourceUnavailable(
                "missing", f"no warehouse at {self.path}: run `make demo` (or `whalecopy demo`)"
            )
        params = dict(params or {})
        key = (tuple(queries.items()), tuple(sorted((k, tuple(v)) for k, v in params.items())))
        stamp = _stamp(self.path)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit.stamp == stamp:
            return hit
        newest = max((s[0] for s in stamp if s is not None), default=0) / 1e9
        if time.time() - newest < self.quiet_s:  # being written: opening it now could make the writer wait
            if hit is not None:
                return replace(hit, stale="the warehouse is being written (a batch run): showing what was read "
                               f"at {_clock(hit.read_at)}")  # fmt: skip
            raise SourceUnavailable("busy", f"the warehouse {self.path} is being written (a batch run): this page "
                                    f"fills in once it has been quiet for {self.quiet_s:g} s") from None  # fmt: skip
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise SourceUnavailable(
                    "missing", f"the warehouse {self.path} cannot be opened: {exc}"
                ) from None
            if hit is not None:
                return replace(hit, stale="the warehouse is busy (a batch run holds its write lock): showing what "
                               f"was read at {_clock(hit.read_at)}")  # fmt: skip
            raise SourceUnavailable("busy", f"the warehouse {self.path} is busy: a batch run holds its write lock. "
                                    "This page fills in when the run ends.") from None  # fmt: skip
        try:
            frames = {}
            for name, sql in queries.items():
                try:
                    frames[name] = con.execute(sql, params.get(name, [])).df()
                except duckdb.CatalogException as exc:
                    raise SourceUnavailable("missing", f"the warehouse {self.path} has no {_missing_name(exc)} "
                                            "yet: run `whalecopy demo` (or the Dagster job) to build it") from None  # fmt: skip
                except duckdb.BinderException as exc:
                    raise SourceUnavailable("missing", f"the warehouse {self.path} lacks a column this page reads "
                                            f"({str(exc).splitlines()[0]}): it was built by an older whalecopy; "
                                            "run `whalecopy demo` (or the Dagster job) to rebuild it") from None  # fmt: skip
        finally:
            con.close()
        read = Read(frames, time.time(), stamp)
        with self._lock:
            self._cache.pop(key, None)
            self._cache[key] = read  # newest last
            while len(self._cache) > self.max_cached:
                self._cache.pop(next(iter(self._cache)))
        return read


def _missing_name(exc: Exception) -> str:
    text = str(exc)
    if "with name " in text:
        return "table " + text.split("with name ", 1)[1].split(" ", 1)[0]
    return f"table it needs ({text.splitlines()[0]})"


class LiveStore:
    """Reads of the live loop's store; never cached (the loop commits every few milliseconds)."""

    def __init__(self, live_root: Path):
        self.root = Path(live_root)
        self.path = self.root / "live.sqlite"

    def read(
        self, queries: Mapping[str, str], params: Mapping[str, list] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Every query in one read-only connection; ``params`` binds a query's ``?`` by name."""
        from live.store import connect_readonly

        params = dict(params or {})

        if not self.path.exists():
            raise SourceUnavailable("missing", f"no live store at {self.path}: start `whalecopy live` (or "
                                    "`make live-demo`)")  # fmt: skip
        try:
            con = connect_readonly(self.path)
        except sqlite3.Error as exc:
            raise SourceUnavailable("busy", f"the live store {self.path} cannot be read now: {exc}") from None
        try:
            return {name: pd.read_sql(sql, con, params=params.get(name, [])) for name, sql in queries.items()}
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise SourceUnavailable("busy", f"the live store {self.path} is busy: {exc}") from None
            raise SourceUnavailable("missing", f"the live store {self.path} cannot answer: {exc}") from None
        finally:
            con.close()

    def state(self) -> dict:
        """The loop's own state rows (``state`` table), decoded."""
        rows = self.read({"state": "SELECT key, value FROM state"})["state"]
        return {k: json.loads(v) for k, v in zip(rows["key"], rows["value"], strict=True)}

    def holder_pid(self) -> int | None:
        """The pid of the process holding ``live.lock`` when it is alive (the lock file keeps the last holder's
        pid after it exits, so liveness is checked, not assumed). Never takes the lock itself: that could refuse
        a loop starting at the same moment."""
        try:
            text = (self.root / "live.lock").read_text().strip()
        except FileNotFoundError:
            return None
        if not text.startswith("pid "):
            return None
        try:
            pid = int(text.split()[1])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return None
        except PermissionError:  # alive, another user's
            return pid
        return pid

    def strategy(self) -> dict:
        """The strategy config of the batch snapshot the loop runs on (its limits), or {} without one."""
        root = self.root / "snapshot"
        try:
            generation = (root / "CURRENT").read_text().strip()
            return json.loads((root / generation / "meta.json").read_text()).get("strategy", {})
        except (FileNotFoundError, ValueError):
            return {}
