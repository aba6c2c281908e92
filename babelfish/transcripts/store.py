"""Transcripts: every call, its legs and every utterance, kept durably (SQLite by default).

A **call** here is what the people on it would call one conversation: one room, from its first leg to its
last. Each utterance is stored with its call, leg, the speaker's number (masked unless told otherwise),
language, times, source text and translations. The database is named by a SQLAlchemy URL, so a server
database (``postgresql+psycopg://...``) can replace the SQLite file. SQLAlchemy's blocking API is used on
one worker thread (``AsyncStore``); the CLI uses :class:`TranscriptStore` directly.

The same database remembers each caller's language choice; numbers there are kept as SHA-256 digests, so
the table lets the server recognise a returning caller without listing who called.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine

from babelfish.core.privacy import mask_number
from babelfish.core.utterance import Utterance
from babelfish.core.worker import Worker

log = logging.getLogger(__name__)

metadata = MetaData()

calls = Table(
    "calls", metadata,
    Column("id", String(64), primary_key=True),
    Column("room", String(64), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
)
legs = Table(
    "legs", metadata,
    Column("call_id", String(64), primary_key=True),
    Column("leg_id", String(128), primary_key=True),
    Column("number", String(64), nullable=False),
    Column("language", String(16), nullable=False),
    Column("direction", String(16), nullable=False, default="inbound"),
    Column("joined_at", Float, nullable=False),
    Column("left_at", Float),
)
utterances = Table(
    "utterances", metadata,
    Column("id", String(32), primary_key=True),
    Column("call_id", String(64), nullable=False),
    Column("leg_id", String(128), nullable=False),
    Column("number", String(64), nullable=False),
    Column("language", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=False),
    Column("source_text", Text, nullable=False),
    Column("translations", Text, nullable=False),  # JSON: listener language -> text
    Column("latencies", Text, nullable=False),  # JSON: stage -> seconds
    Column("error", Text),
    Column("language_confidence", Float),  # None: the language was not identified
    Column("terms_missed", Text),  # JSON: the glossary renderings a translation lacked ("de: Zuzahlung")
    Index("ix_utterances_call", "call_id", "started_at"),
)
# The operator's glossary (babelfish/transcripts/glossary.py): one row per entry; the version row counts the
# changes, so a server notices an edit made by the CLI or another process.
glossary_terms = Table(
    "glossary_terms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room", String(64), nullable=False, default=""),  # "" server-wide, else a room code
    Column("kind", String(8), nullable=False),  # term | name
    Column("language_a", String(16), nullable=False),
    Column("text_a", String(80), nullable=False),
    Column("language_b", String(16), nullable=False),
    Column("text_b", String(80), nullable=False),
    Column("key", String(200), nullable=False, unique=True),  # one entry per room, kind, languages and term
    Column("updated_at", Float, nullable=False),
)
glossary_version = Table(
    "glossary_version", metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)
# -- interpreters: what happened in a call besides utterances (joins, leaves, hand-overs) -----------------------
call_events = Table(
    "call_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),  # interpreter_joined, interpreter_left, handed_over, taken_back
    Column("leg_id", String(128)),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_call_events_call", "call_id", "at"),
)
# -- end interpreters ---------------------------------------------------------------------------------------------
callers = Table(
    "callers", metadata,
    Column("number_sha256", String(64), primary_key=True),
    Column("language", String(16), nullable=False),
    Column("calls", Integer, nullable=False, default=1),
    Column("updated_at", Float, nullable=False),
)


def number_key(number: str) -> str:
    return hashlib.sha256(number.lstrip("+").encode()).hexdigest()


class TranscriptStore:
    """Blocking access to the transcript database (the server wraps it in :class:`AsyncStore`)."""

    def __init__(self, url: str, *, mask_numbers: bool = True) -> None:
        self.url = url
        self.mask_numbers = mask_numbers
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a database was created (create_all makes missing tables, not columns)."""
        have = {column["name"] for column in inspect(self.engine).get_columns("utterances")}
        with self.engine.begin() as db:
            for column in utterances.columns:
                if column.name not in have and column.nullable:
                    db.execute(sql(f"ALTER TABLE utterances ADD COLUMN {column.name} "
                                    f"{column.type.compile(self.engine.dialect)}"))

    def close(self) -> None:
        self.engine.dispose()

    def _number(self, number: str) -> str:
        return mask_number(number) if self.mask_numbers else number

    # -- writing ----------------------------------------------------------------------------------------

    def call_started(self, call_id: str, room: str, at: float) -> None:
        with self.engine.begin() as db:
            if db.execute(select(calls.c.id).where(calls.c.id == call_id)).first() is None:
                db.execute(insert(calls).values(id=call_id, room=room, started_at=at))

    def call_ended(self, call_id: str, at: float) -> None:
        with self.engine.begin() as db:
            db.execute(update(calls).where(calls.c.id == call_id).values(ended_at=at))

    def leg_joined(self, call_id: str, leg_id: str, number: str, language: str, direction: str,
                   at: float) -> None:
        with self.engine.begin() as db:
            key = (legs.c.call_id == call_id) & (legs.c.leg_id == leg_id)
            if db.execute(select(legs.c.leg_id).where(key)).first() is None:
                db.execute(insert(legs).values(call_id=call_id, leg_id=leg_id, number=self._number(number),
                                               language=language, direction=direction, joined_at=at))
            else:
                db.execute(update(legs).where(key).values(language=language, left_at=None))

    def leg_left(self, call_id: str, leg_id: str, at: float) -> None:
        with self.engine.begin() as db:
            db.execute(update(legs).where((legs.c.call_id == call_id) & (legs.c.leg_id == leg_id))
                       .values(left_at=at))

    def add_utterance(self, call_id: str, record: Utterance, number: str) -> None:
        with self.engine.begin() as db:
            db.execute(insert(utterances).values(
                id=record.id, call_id=call_id, leg_id=record.leg, number=self._number(number),
                language=record.language, started_at=record.started_at, ended_at=record.ended_at,
                source_text=record.source_text, translations=json.dumps(record.translations, ensure_ascii=False),
                latencies=json.dumps({k: round(v, 4) for k, v in record.latencies.items()}), error=record.error,
                language_confidence=record.language_confidence,
                terms_missed=json.dumps(record.terms_missed, ensure_ascii=False) if record.terms_missed else None,
            ))

    def purge(self, older_than_days: float, now: float | None = None) -> int:
        """Delete calls (with their legs and utterances) that ended more than ``older_than_days`` ago."""
        cutoff = (now or time.time()) - older_than_days * 86400
        with self.engine.begin() as db:
            old = [row.id for row in db.execute(
                select(calls.c.id).where(func.coalesce(calls.c.ended_at, calls.c.started_at) < cutoff))]
            for chunk in range(0, len(old), 500):
                ids = old[chunk : chunk + 500]
                db.execute(delete(utterances).where(utterances.c.call_id.in_(ids)))
                db.execute(delete(call_events).where(call_events.c.call_id.in_(ids)))
                db.execute(delete(legs).where(legs.c.call_id.in_(ids)))
                db.execute(delete(calls).where(calls.c.id.in_(ids)))
        if old:
            log.info("retention: deleted %d calls older than %g days", len(old), older_than_days)
        return len(old)

    # -- interpreters: call events --------------------------------------------------------------------

    def add_event(self, call_id: str, kind: str, leg_id: str | None, detail: str, at: float) -> None:
        """Something that happened in a call besides an utterance (an interpreter joined, a hand-over)."""
        with self.engine.begin() as db:
            db.execute(insert(call_events).values(call_id=call_id, at=at, kind=kind, leg_id=leg_id, detail=detail))

    @staticmethod
    def _events(db: Any, call_id: str) -> list[dict[str, Any]]:
        return [dict(row._mapping) for row in db.execute(
            select(call_events.c.at, call_events.c.kind, call_events.c.leg_id, call_events.c.detail)
            .where(call_events.c.call_id == call_id).order_by(call_events.c.at, call_events.c.id))]

    # -- remembered languages ---------------------------------------------------------------------------

    def remember_language(self, number: str, language: str) -> None:
        key = number_key(number)
        with self.engine.begin() as db:
            row = db.execute(select(callers.c.calls).where(callers.c.number_sha256 == key)).first()
            if row is None:
                db.execute(insert(callers).values(number_sha256=key, language=language, calls=1,
                                                  updated_at=time.time()))
            else:
                db.execute(update(callers).where(callers.c.number_sha256 == key)
                           .values(language=language, calls=row.calls + 1, updated_at=time.time()))

    def remembered_language(self, number: str) -> str | None:
        with self.engine.connect() as db:
            row = db.execute(select(callers.c.language).where(callers.c.number_sha256 == number_key(number))).first()
        return row.language if row else None

    # -- reading ----------------------------------------------------------------------------------------

    def list_calls(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return self.search_calls("", limit, offset)[0]

    def search_calls(self, text: str = "", limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Calls newest first, as :meth:`list_calls`, with the count of all that match; ``text``: only calls
        in which it was said or heard (case-insensitive, in the source text or a translation)."""
        counts = (select(utterances.c.call_id, func.count().label("n")).group_by(utterances.c.call_id)
                  .subquery())
        query = select(calls, func.coalesce(counts.c.n, 0).label("utterances")).outerjoin(
            counts, counts.c.call_id == calls.c.id)
        total = select(func.count()).select_from(calls)
        if text:
            pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            said = select(utterances.c.call_id).where(
                func.lower(utterances.c.source_text).like(pattern, escape="\\")
                | func.lower(utterances.c.translations).like(pattern, escape="\\"))
            query = query.where(calls.c.id.in_(said))
            total = total.where(calls.c.id.in_(said))
        query = query.order_by(calls.c.started_at.desc()).limit(limit).offset(offset)
        with self.engine.connect() as db:
            rows = [dict(row._mapping) for row in db.execute(query)]
            for row in rows:
                row["legs"] = self._legs(db, row["id"])
            return rows, int(db.execute(total).scalar_one())

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(calls).where(calls.c.id == call_id)).first()
            if row is None:
                return None
            call = dict(row._mapping)
            call["legs"] = self._legs(db, call_id)
            call["utterances"] = [_utterance(dict(u._mapping)) for u in db.execute(
                select(utterances).where(utterances.c.call_id == call_id).order_by(utterances.c.started_at))]
            call["events"] = self._events(db, call_id)
        return call

    @staticmethod
    def _legs(db: Any, call_id: str) -> list[dict[str, Any]]:
        return [dict(leg._mapping) for leg in db.execute(
            select(legs.c.leg_id, legs.c.number, legs.c.language, legs.c.direction, legs.c.joined_at,
                   legs.c.left_at).where(legs.c.call_id == call_id).order_by(legs.c.joined_at))]


def _utterance(row: dict[str, Any]) -> dict[str, Any]:
    row["translations"] = json.loads(row["translations"])
    row["latencies"] = json.loads(row["latencies"])
    row["terms_missed"] = json.loads(row["terms_missed"]) if row.get("terms_missed") else []
    return row


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL lets the CLI read while the server writes; NORMAL sync is durable across a process crash."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class AsyncStore:
    """The store for the server: every call runs on one worker thread, never on the event loop. Writes are
    tracked so that shutdown can wait for the last of them (``flush``)."""

    def __init__(self, store: TranscriptStore) -> None:
        self.store = store
        self._worker = Worker("transcripts")
        self._pending: set[asyncio.Task[None]] = set()
        self.failed_writes = 0

    async def run(self, fn: Any, *args: Any) -> Any:
        return await self._worker.run(fn, *args)

    def write(self, fn: Any, *args: Any) -> None:
        """Fire-and-forget write (failures are logged and counted, never raised into a call)."""
        async def write() -> None:
            try:
                await self._worker.run(fn, *args)
            except Exception:  # noqa: BLE001 - a failed write must not end the call
                self.failed_writes += 1
                log.exception("transcript write failed: %s", getattr(fn, "__name__", fn))

        task = asyncio.create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        self.store.close()
        self._worker.close()
