"""The operator's glossary, kept in the transcript database (tables in :mod:`babelfish.transcripts.store`).

:class:`GlossaryStore` is the blocking access the CLI (``babelfish glossary``) and the console use (the
server runs it on the store's worker thread); :class:`LiveGlossary` is what calls read, an in-memory copy
reloaded whenever the database's glossary version moves, so an edit made anywhere (console, CLI, another
server on the same database) reaches live calls within a second, without a restart and without a database
read on the audio path.

CSV (import and export)::

    kind,language,term,target_language,target_term,room
    term,en,copay,de,Zuzahlung,
    name,,Dr. Okonkwo,,,
    term,en,ticket,de,Vorgang,clinic42

``room`` empty: server-wide; otherwise the room code the entry belongs to.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from babelfish.core.glossary import Glossary, Term, validate
from babelfish.transcripts.store import TranscriptStore, glossary_terms, glossary_version

log = logging.getLogger(__name__)

CSV_COLUMNS = ("kind", "language", "term", "target_language", "target_term", "room")
FIELDS = CSV_COLUMNS  # an entry as the console's JSON and the CLI's options name it (Term.as_dict, make_term)
MAX_TERMS = 5000  # the whole glossary, every room: each utterance is matched against its room's entries
MAX_CSV_BYTES = 1_000_000
ROOM_CODE_CHARS = 64


class GlossaryError(ValueError):
    """An entry or a CSV the glossary cannot take, in words for the operator."""


def _key(term: Term) -> str:
    return "\x1f".join((term.room, term.kind, term.language_a, term.text_a.casefold(), term.language_b))


def _term(row: dict[str, object]) -> Term:
    return Term(kind=row["kind"], language_a=str(row["language_a"]), text_a=str(row["text_a"]),  # type: ignore[arg-type]
                language_b=str(row["language_b"]), text_b=str(row["text_b"]), room=str(row["room"]),
                id=int(row["id"]))  # type: ignore[call-overload]


def room_code(room: str | None) -> str:
    """``room`` as an entry's room ("" for server-wide); GlossaryError unless it is a room code."""
    room = (room or "").strip()
    if len(room) > ROOM_CODE_CHARS or any(not (c.isalnum() or c in "-_") for c in room):
        raise GlossaryError(f"room must be a room code (letters, digits, - and _), not {room!r}")
    return room


def make_term(kind: str, language: str, term: str, target_language: str = "", target_term: str = "",
              room: str = "") -> Term:
    """An entry from what an operator typed (console form, CSV row, CLI), checked; GlossaryError if wrong."""
    room = room_code(room)
    typed = (kind, language, term, target_language, target_term)
    if any(unicodedata.category(ch) == "Cc" for text in typed for ch in text or ""):
        raise GlossaryError("an entry is text on one line, without control characters")
    kind = (kind or "").strip().lower()
    try:
        if kind == "name":
            return validate(Term.name(term, room))
        if kind == "term":
            if not target_term.strip() or not target_language.strip() or not language.strip():
                raise GlossaryError("a term needs language, term, target_language and target_term")
            return validate(Term.pair(language, term, target_language, target_term, room))
    except ValueError as exc:
        raise GlossaryError(str(exc)) from None
    raise GlossaryError(f"kind must be 'term' or 'name', not {kind!r}")


class GlossaryStore:
    """Blocking access to the glossary tables."""

    def __init__(self, store: TranscriptStore) -> None:
        self.engine = store.engine

    def version(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(select(glossary_version.c.version).where(glossary_version.c.id == 1))
                       .scalar() or 0)

    def terms(self, room: str | None = None) -> list[Term]:
        """Every entry (``room=None``), or those of one room (``""``: the server-wide ones)."""
        query = select(glossary_terms).order_by(glossary_terms.c.room, glossary_terms.c.id)
        if room is not None:
            query = query.where(glossary_terms.c.room == room)
        with self.engine.connect() as db:
            return [_term(dict(row._mapping)) for row in db.execute(query)]

    def get(self, term_id: int) -> Term | None:
        with self.engine.connect() as db:
            row = db.execute(select(glossary_terms).where(glossary_terms.c.id == term_id)).first()
        return _term(dict(row._mapping)) if row is not None else None

    def change(self, term_id: int, changes: Mapping[str, str]) -> Term | None:
        """Entry ``term_id`` with some of its :data:`FIELDS` changed (the others as they are), checked as
        :func:`make_term` checks a new one; None if there is none."""
        if unknown := set(changes) - set(FIELDS):
            raise GlossaryError(f"an entry has no {', '.join(sorted(unknown))} (it has {', '.join(FIELDS)})")
        current = self.get(term_id)
        if current is None:
            return None
        fields = {k: str(v) for k, v in current.as_dict().items() if k in FIELDS}
        return self.edit(term_id, make_term(**{**fields, **changes}))

    def _bump(self, db: Connection) -> None:
        if db.execute(update(glossary_version).where(glossary_version.c.id == 1)
                      .values(version=glossary_version.c.version + 1)).rowcount == 0:
            db.execute(insert(glossary_version).values(id=1, version=1))

    def _row(self, term: Term) -> dict[str, object]:
        return {"room": term.room, "kind": term.kind, "language_a": term.language_a, "text_a": term.text_a,
                "language_b": term.language_b, "text_b": term.text_b, "key": _key(term), "updated_at": time.time()}

    def add(self, term: Term) -> Term:
        """A new entry; GlossaryError if the room already has it (edit it instead) or the glossary is full."""
        with self.engine.begin() as db:
            if int(db.execute(select(func.count()).select_from(glossary_terms)).scalar_one()) >= MAX_TERMS:
                raise GlossaryError(f"the glossary is full ({MAX_TERMS} entries)")
            try:
                new_id = db.execute(insert(glossary_terms).values(**self._row(term))).inserted_primary_key[0]
            except IntegrityError:
                raise GlossaryError(f"{term.text_a!r} is already in this glossary: edit it instead") from None
            self._bump(db)
        return Term(term.kind, term.language_a, term.text_a, term.language_b, term.text_b, term.room, int(new_id))

    def edit(self, term_id: int, term: Term) -> Term | None:
        """Entry ``term_id`` replaced by ``term``; None if there is none."""
        with self.engine.begin() as db:
            try:
                changed = db.execute(update(glossary_terms).where(glossary_terms.c.id == term_id)
                                     .values(**self._row(term))).rowcount
            except IntegrityError:
                raise GlossaryError(f"{term.text_a!r} is already in this glossary") from None
            if not changed:
                return None
            self._bump(db)
        return Term(term.kind, term.language_a, term.text_a, term.language_b, term.text_b, term.room, term_id)

    def remove(self, term_id: int) -> bool:
        with self.engine.begin() as db:
            gone = db.execute(delete(glossary_terms).where(glossary_terms.c.id == term_id)).rowcount
            if gone:
                self._bump(db)
        return bool(gone)

    def import_csv(self, text: str, *, replace: bool = False) -> int:
        """Entries from CSV (see the module's docstring); each row's room as written. ``replace``: the rooms
        named in the file lose their other entries. All or nothing: one bad row and nothing changes
        (GlossaryError names the line). Returns the entries added or changed."""
        if len(text.encode()) > MAX_CSV_BYTES:
            raise GlossaryError(f"the CSV is over {MAX_CSV_BYTES // 1000} kB")
        # any line ends (a bare CR: old spreadsheets), which the csv module refuses in a line
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")))
        terms: list[Term] = []
        try:
            missing = [c for c in ("kind", "term") if c not in (reader.fieldnames or [])]
            if missing:
                raise GlossaryError(f"the CSV's first line must name the columns {', '.join(CSV_COLUMNS)} "
                                    f"(missing: {', '.join(missing)})")
            for row in reader:
                try:
                    terms.append(make_term(row.get("kind") or "", row.get("language") or "",
                                           row.get("term") or "", row.get("target_language") or "",
                                           row.get("target_term") or "", row.get("room") or ""))
                except GlossaryError as exc:
                    raise GlossaryError(f"line {reader.line_num}: {exc}") from None
        except csv.Error as exc:  # a field over the csv module's limit, while the next line was read
            raise GlossaryError(f"line {reader.line_num + 1}: {exc}") from None
        with self.engine.begin() as db:
            if replace:
                for room in {t.room for t in terms}:
                    db.execute(delete(glossary_terms).where(glossary_terms.c.room == room))
            have = {row.key: row.id for row in db.execute(select(glossary_terms.c.key, glossary_terms.c.id))}
            new = [t for t in dict((_key(t), t) for t in terms).values()]
            if len(have) + sum(1 for t in new if _key(t) not in have) > MAX_TERMS:
                raise GlossaryError(f"the glossary would be over {MAX_TERMS} entries")
            for term in new:
                if _key(term) in have:
                    db.execute(update(glossary_terms).where(glossary_terms.c.id == have[_key(term)])
                               .values(**self._row(term)))
                else:
                    db.execute(insert(glossary_terms).values(**self._row(term)))
            self._bump(db)
        return len(new)

    def export_csv(self, room: str | None = None) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for t in self.terms(room):
            if t.kind == "name":
                writer.writerow(("name", "", t.text_a, "", "", t.room))
            else:
                writer.writerow(("term", t.language_a, t.text_a, t.language_b, t.text_b, t.room))
        return out.getvalue()


def _sides(term: Term) -> set[tuple[str, str]]:
    """How ``term`` is written in each of its languages, case aside."""
    return {(term.language_a, term.text_a.casefold()), (term.language_b, term.text_b.casefold())}


class LiveGlossary:
    """The glossary calls read (:class:`babelfish.core.glossary.GlossaryBook`): every entry in memory,
    reloaded when the database's glossary version moves (:meth:`watch`) and after the server's own edits
    (:meth:`refresh`)."""

    def __init__(self, store: GlossaryStore, run: Callable[..., object]) -> None:
        self.store = store
        self._run = run  # runs a blocking call off the event loop (the transcript store's worker)
        self._version = -1
        self._terms: list[Term] = []
        self._rooms: dict[str | None, Glossary] = {}
        self._own_rooms: set[str] = set()  # the room codes with entries of their own

    def glossary(self, room_code: str | None) -> Glossary:
        # a room without entries of its own shares the server-wide one: room codes are what callers type, so
        # one cached glossary per code ever typed would grow without bound between two edits
        key = room_code if room_code in self._own_rooms else None
        if key not in self._rooms:
            own = [t for t in self._terms if key and t.room == key]
            said = {side for t in own for side in _sides(t)}  # a room's own rendering wins over the server's
            self._rooms[key] = Glossary([*own, *(t for t in self._terms if not t.room and not _sides(t) & said)])
        return self._rooms[key]

    def load(self, terms: Iterable[Term], version: int) -> None:
        self._terms, self._version, self._rooms = list(terms), version, {}
        self._own_rooms = {t.room for t in self._terms if t.room}

    async def refresh(self) -> bool:
        """Reload if the glossary changed since the last load; whether it did."""
        version = await self._run(self.store.version)  # type: ignore[misc]
        if version == self._version:
            return False
        terms = await self._run(self.store.terms)  # type: ignore[misc]
        self.load(terms, version)
        log.info("glossary: %d entries (version %d)", len(terms), version)
        return True

    async def watch(self, interval_s: float = 1.0) -> None:
        """Keep in step with the database until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - calls go on with the glossary they have
                log.exception("reading the glossary failed")
            await asyncio.sleep(interval_s)
