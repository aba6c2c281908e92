"""The glossary in the transcript database: entries added, edited and removed, duplicates and limits refused
with a message for the operator, CSV in and out (all or nothing), and the live copy calls read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from babelfish.core.glossary import Term
from babelfish.transcripts import glossary as module
from babelfish.transcripts.glossary import GlossaryError, GlossaryStore, LiveGlossary, make_term
from babelfish.transcripts.store import TranscriptStore

COPAY = make_term("term", "en-GB", " copay ", "de", "Zuzahlung")
DOCTOR = make_term("name", "", "Dr. Okonkwo", room="clinic42")


@pytest.fixture
def store(tmp_path: Path) -> GlossaryStore:
    return GlossaryStore(TranscriptStore(f"sqlite:///{tmp_path / 't.db'}"))


def test_an_entry_from_what_the_operator_typed_is_checked() -> None:
    assert COPAY == Term("term", "en", "copay", "de", "Zuzahlung")  # primary tags, trimmed
    assert DOCTOR == Term("name", "", "Dr. Okonkwo", "", "Dr. Okonkwo", "clinic42")
    wrong = [
        (("word", "en", "copay", "de", "Zuzahlung"), "kind must be 'term' or 'name'"),
        (("term", "en", "copay", "", ""), "a term needs language, term, target_language and target_term"),
        (("term", "en", "copay", "en", "co-pay"), "two languages must differ"),
        (("term", "xx", "copay", "de", "Zuzahlung"), "unknown language"),
        (("term", "en", "c" * 81, "de", "Zuzahlung"), "1-80 characters"),
        (("name", "", "--"), "needs a letter or a digit"),
        (("name", "", "Dr.\x00Okonkwo"), "without control characters"),
        (("name", "", "Dr. Okonkwo", "", "", "room 4711"), "room must be a room code"),
        (("name", "", "Dr. Okonkwo", "", "", "4" * 65), "room must be a room code"),
    ]
    for args, message in wrong:
        with pytest.raises(GlossaryError, match=message):
            make_term(*args)


def test_add_edit_remove_and_the_version_moves_with_each_change(store: GlossaryStore) -> None:
    assert store.version() == 0 and store.terms() == []
    copay = store.add(COPAY)
    doctor = store.add(DOCTOR)
    assert copay.id is not None and doctor.id is not None and store.version() == 2
    assert store.terms() == [copay, doctor]  # server-wide first, then by room
    assert store.terms("") == [copay] and store.terms("clinic42") == [doctor] and store.terms("4711") == []
    assert store.get(copay.id) == copay and store.get(999) is None

    changed = store.change(copay.id, {"target_term": "Eigenanteil"})
    assert changed == Term("term", "en", "copay", "de", "Eigenanteil", "", copay.id) == store.get(copay.id)
    moved = store.change(doctor.id, {"room": "", "kind": "name"})
    assert moved is not None and moved.room == "" and store.terms("clinic42") == []
    assert store.change(999, {"term": "x"}) is None
    with pytest.raises(GlossaryError, match="has no colour"):
        store.change(copay.id, {"colour": "blue"})
    with pytest.raises(GlossaryError, match="two languages must differ"):
        store.change(copay.id, {"target_language": "en"})
    assert store.version() == 4  # the refused changes changed nothing

    assert store.remove(copay.id) and not store.remove(copay.id)
    assert store.terms() == [moved] and store.version() == 5


def test_duplicates_are_refused_per_room_and_the_glossary_is_bounded(store: GlossaryStore, monkeypatch) -> None:
    store.add(COPAY)
    with pytest.raises(GlossaryError, match="already in this glossary: edit it instead"):
        store.add(make_term("term", "en", "COPAY", "de", "Eigenanteil"))  # one rendering per term, any case
    in_room = store.add(make_term("term", "en", "copay", "de", "Eigenanteil", room="4711"))  # a room's own
    doctor = store.add(DOCTOR)
    with pytest.raises(GlossaryError, match="already in this glossary"):
        store.change(doctor.id, {"kind": "term", "language": "en", "term": "copay", "target_language": "de",
                                 "target_term": "x", "room": ""})
    monkeypatch.setattr(module, "MAX_TERMS", 3)
    with pytest.raises(GlossaryError, match="full"):
        store.add(make_term("name", "", "FlexiPay"))
    with pytest.raises(GlossaryError, match="over 3 entries"):
        store.import_csv("kind,term\nname,FlexiPay\n")
    assert len(store.terms()) == 3 and store.get(in_room.id) == in_room  # nothing changed
    store.import_csv("kind,term,room\nname,Dr. Okonkwo,clinic42\n")  # an entry it has: changed, not added
    assert len(store.terms()) == 3


def test_csv_round_trip(store: GlossaryStore, tmp_path: Path) -> None:
    store.add(COPAY)
    store.add(DOCTOR)
    store.add(make_term("term", "en", "ticket", "de", "Vorgang, offen", room="4711"))  # a comma: quoted
    exported = store.export_csv()
    assert exported.splitlines()[0] == "kind,language,term,target_language,target_term,room"
    assert 'term,en,ticket,de,"Vorgang, offen",4711' in exported
    other = GlossaryStore(TranscriptStore(f"sqlite:///{tmp_path / 'other.db'}"))
    assert other.import_csv("\ufeff" + exported.replace("\n", "\r\n")) == 3  # Excel's BOM and line ends
    assert [t.as_dict() | {"id": None} for t in other.terms()] == [t.as_dict() | {"id": None} for t in store.terms()]
    assert other.export_csv() == exported
    assert store.export_csv("4711").splitlines()[1:] == ['term,en,ticket,de,"Vorgang, offen",4711']


def test_a_bad_row_names_its_line_and_nothing_changes(store: GlossaryStore) -> None:
    store.add(COPAY)
    before, version = store.terms(), store.version()
    bad = {
        "kind,language,term,target_language,target_term,room\nname,,Dr. Okonkwo,,,\nterm,en,ticket,de,,\n":
            "line 3: a term needs",
        "kind,term\nname,FlexiPay\nname,FlexiPay Plus\nname,Flexi\tPay\n": "line 4: ",
        "kind,term,room\nname,FlexiPay,4711\nname,Okonkwo,the clinic\n": "line 3: room must be a room code",
        'kind,term\nname,FlexiPay\nname,"' + "x" * 200_000 + '"\n': "line 3: field larger than field limit",
        "term,language\ncopay,en\n": r"first line must name the columns .* \(missing: kind\)",
        "x" * (module.MAX_CSV_BYTES + 1): "over 1000 kB",
    }
    for text, message in bad.items():
        with pytest.raises(GlossaryError, match=message):
            store.import_csv(text, replace=True)
        assert store.terms() == before and store.version() == version, message


def test_import_adds_or_changes_and_replace_empties_only_the_rooms_it_names(store: GlossaryStore) -> None:
    store.add(COPAY)
    store.add(DOCTOR)
    store.add(make_term("name", "", "FlexiPay", room="4711"))
    csv = "kind,language,term,target_language,target_term,room\nterm,en,copay,de,Eigenanteil,\nname,,Zelnorm,,,\n"
    assert store.import_csv(csv) == 2
    assert {(t.text_a, t.text_b, t.room) for t in store.terms()} == {
        ("copay", "Eigenanteil", ""), ("Zelnorm", "Zelnorm", ""), ("Dr. Okonkwo", "Dr. Okonkwo", "clinic42"),
        ("FlexiPay", "FlexiPay", "4711")}
    assert store.import_csv("kind,term,room\nname,Ms. Ito,4711\n", replace=True) == 1
    assert [t.text_a for t in store.terms("4711")] == ["Ms. Ito"]  # the room's other entries are gone
    assert len(store.terms("")) == 2 and len(store.terms("clinic42")) == 1  # other rooms are not


async def test_the_live_glossary_follows_the_database(store: GlossaryStore) -> None:
    async def run(fn: Any, *args: Any) -> Any:
        return fn(*args)

    live = LiveGlossary(store, run)
    assert await live.refresh() and not live.glossary(None)
    store.add(COPAY)
    store.add(DOCTOR)
    assert not live.glossary(None)  # the copy in memory, until it is refreshed
    assert await live.refresh() and not await live.refresh()  # reloaded once per change
    assert [t.text_a for t in live.glossary(None).terms] == ["copay"]
    assert [t.text_a for t in live.glossary("clinic42").terms] == ["Dr. Okonkwo", "copay"]  # the room's own too
    assert [r.required for r in live.glossary("4711").renderings("two copays", "en", "de")] == ["Zuzahlung"]
    # a room's own rendering of a term wins over the server-wide one, whichever way round either is written
    store.add(make_term("term", "de", "Eigenanteil", "en", "copay", room="4711"))
    assert await live.refresh()
    assert [r.required for r in live.glossary("4711").renderings("two copays", "en", "de")] == ["Eigenanteil"]
    assert [r.required for r in live.glossary("4711").renderings("die Zuzahlung", "de", "en")] == []
    assert [r.required for r in live.glossary("4712").renderings("two copays", "en", "de")] == ["Zuzahlung"]
    # rooms without entries of their own share one glossary: codes typed by callers do not grow the cache
    assert all(live.glossary(str(code)) is live.glossary(None) for code in range(1000))
