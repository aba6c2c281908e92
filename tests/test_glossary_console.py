"""The glossary from the console and the CLI: every route works for the operator and is refused to anyone
else (changing nothing), a change reaches live calls at once, and one made by another process (the CLI)
within a second; in headless Chromium, the Glossary tab adds an entry and shows it.

``BABELFISH_SCREENSHOTS=DIR`` keeps a screenshot of the Glossary tab in DIR."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from babelfish import cli
from babelfish.config.settings import Settings
from babelfish.core import audio
from babelfish.server.app import Server, create_app
from babelfish.server.console import COOKIE
from babelfish.server.serving import background_server
from babelfish.transcripts.glossary import MAX_CSV_BYTES, GlossaryStore
from babelfish.transcripts.store import TranscriptStore

from .cdp import browsers
from .conftest import OPERATOR, OPERATOR_TOKEN, double_engines
from .test_cli_errors import said

COPAY = {"kind": "term", "language": "en", "term": "copay", "target_language": "de", "target_term": "Zuzahlung",
         "room": ""}
CSV_HEADER = "kind,language,term,target_language,target_term,room\n"
TRANSCRIPTS_TOKEN = "transcripts-token-24-chars"


def routes(term_id: int) -> list[tuple[str, str, dict[str, object]]]:
    """Every glossary route, with what the operator would send."""
    csv = {"content": CSV_HEADER + "name,,Dr. Okonkwo,,,\n", "headers": {"Content-Type": "text/csv"}}
    return [("GET", "/console/api/glossary", {}), ("GET", "/console/api/glossary?room=4711", {}),
            ("POST", "/console/api/glossary", {"json": {**COPAY, "term": "deductible"}}),
            ("PUT", f"/console/api/glossary/{term_id}", {"json": {"target_term": "Eigenanteil"}}),
            ("DELETE", f"/console/api/glossary/{term_id}", {}),
            ("GET", "/console/api/glossary.csv", {}),
            ("POST", "/console/api/glossary.csv?replace=1", csv)]


@pytest.fixture
def console(settings: Settings) -> Iterator[tuple[TestClient, Server]]:
    app = create_app(settings.model_copy(update={"transcripts": settings.transcripts.model_copy(
        update={"token": TRANSCRIPTS_TOKEN})}), double_engines())
    with TestClient(app) as http:
        yield http, app.state.server


def rendered(server: Server, room: str | None, text: str = "the copay is due") -> list[str]:
    """What the live glossary of ``room`` requires an English ``text``'s German translation to contain."""
    return [r.required for r in server.glossary.glossary(room).renderings(text, "en", "de")]


@pytest.mark.parametrize("who", ["nobody", "wrong token", "room code", "room code in the query", "join link",
                                 "transcripts token", "forged session", "another site"])
def test_every_glossary_route_is_refused_to_anyone_but_the_operator(console, who: str) -> None:
    http, server = console
    entry = http.post("/console/api/glossary", json={**COPAY, "room": "4711"}, headers=OPERATOR).json()
    link = http.post("/console/api/links", json={"room": "4711", "language": "fr-FR"}, headers=OPERATOR).json()
    credentials: dict[str, str] = {
        "nobody": {}, "wrong token": {"Authorization": "Bearer wrong"},
        "room code": {"Authorization": "Bearer 4711"}, "room code in the query": {},
        "join link": {"Authorization": f"Bearer {link['url'].split('link=')[1]}"},
        "transcripts token": {"Authorization": f"Bearer {TRANSCRIPTS_TOKEN}"},
        "forged session": {"Cookie": f"{COOKIE}=9999999999.abcd.{'0' * 64}"},
        "another site": {**OPERATOR, "Origin": "https://evil.example"},  # the operator's own token, from a page
    }[who]
    before = (http.get("/console/api/glossary.csv", headers=OPERATOR).text, server.glossary.store.version())
    for method, path, send in routes(entry["id"]):
        if who == "room code in the query":
            path += ("&" if "?" in path else "?") + "token=4711"
        headers = {**credentials, **send.get("headers", {})}  # type: ignore[dict-item]
        r = http.request(method, path, headers=headers, json=send.get("json"), content=send.get("content"))
        assert r.status_code == (403 if who == "another site" else 401), (who, method, path, r.status_code)
        assert set(r.json()) == {"error"} and "copay" not in r.text
    assert (http.get("/console/api/glossary.csv", headers=OPERATOR).text, server.glossary.store.version()) == before
    assert rendered(server, "4711") == ["Zuzahlung"]


def test_with_no_operator_token_the_glossary_is_off(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BABELFISH_SECURITY__OPERATOR_TOKEN")
    with TestClient(create_app(Settings(models_dir=tmp_path), double_engines())) as http:
        for method, path, send in routes(1):
            assert http.request(method, path, headers=OPERATOR, json=send.get("json"),
                                content=send.get("content")).status_code == 403, path


def test_the_operator_manages_the_glossary_and_calls_use_each_change_at_once(console) -> None:
    http, server = console
    op = http
    op.headers.update(OPERATOR)
    assert rendered(server, "4711") == []
    added = op.post("/console/api/glossary", json=COPAY)
    assert added.status_code == 201 and added.json() == {**COPAY, "id": added.json()["id"]}
    term_id = added.json()["id"]
    assert rendered(server, "4711") == rendered(server, None) == ["Zuzahlung"]  # server-wide: every room
    name = op.post("/console/api/glossary", json={"kind": "name", "term": "Dr. Okonkwo", "room": "4711"}).json()
    assert name["language"] == "" and name["target_term"] == "Dr. Okonkwo" and name["room"] == "4711"
    assert rendered(server, "4711", "ask Dr. Okonkwo") == ["Dr. Okonkwo"]
    assert rendered(server, None, "ask Dr. Okonkwo") == []

    listed = op.get("/console/api/glossary").json()
    assert [t["id"] for t in listed["terms"]] == [term_id, name["id"]] and listed["max"] == 5000
    assert listed["languages"]["de"] == "German"
    assert [t["id"] for t in op.get("/console/api/glossary", params={"room": "4711"}).json()["terms"]] == [name["id"]]
    assert [t["id"] for t in op.get("/console/api/glossary", params={"room": ""}).json()["terms"]] == [term_id]

    edited = op.put(f"/console/api/glossary/{term_id}", json={"target_term": "Eigenanteil"})
    assert edited.status_code == 200 and edited.json() == {**COPAY, "id": term_id, "target_term": "Eigenanteil"}
    assert rendered(server, "4711") == ["Eigenanteil"]
    moved = op.put(f"/console/api/glossary/{term_id}", json={**edited.json(), "room": "clinic42"})  # the whole entry
    assert moved.json()["room"] == "clinic42" and rendered(server, "4711") == [] == rendered(server, None)
    assert rendered(server, "clinic42") == ["Eigenanteil"]

    exported = op.get("/console/api/glossary.csv", params={"room": "clinic42"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="glossary-clinic42.csv"' in exported.headers["content-disposition"]
    assert exported.text == CSV_HEADER + "term,en,copay,de,Eigenanteil,clinic42\n"
    everything = op.get("/console/api/glossary.csv").text
    assert everything.count("\n") == 3 and "name,,Dr. Okonkwo,,,4711" in everything

    assert op.delete(f"/console/api/glossary/{term_id}").json() == {"removed": term_id}
    assert rendered(server, "clinic42") == []
    imported = op.post("/console/api/glossary.csv", content=exported.text, headers={"Content-Type": "text/csv"})
    assert imported.json() == {"imported": 1, "replace": False} and rendered(server, "clinic42") == ["Eigenanteil"]
    replaced = op.post("/console/api/glossary.csv?replace=1", headers={"Content-Type": "text/csv; charset=utf-8"},
                       content=CSV_HEADER + "term,en,ticket,de,Vorgang,4711\n")
    assert replaced.json() == {"imported": 1, "replace": True}
    assert [t["term"] for t in op.get("/console/api/glossary", params={"room": "4711"}).json()["terms"]] == ["ticket"]
    assert rendered(server, "4711", "ask Dr. Okonkwo") == [] and rendered(server, "4711", "a ticket") == ["Vorgang"]
    assert rendered(server, "clinic42") == ["Eigenanteil"]  # a room the file did not name


def test_mistakes_are_400_with_a_message_unknown_entries_404_and_nothing_changes(console) -> None:
    http, server = console
    op = http
    op.headers.update(OPERATOR)
    term_id = op.post("/console/api/glossary", json=COPAY).json()["id"]
    before, version = op.get("/console/api/glossary.csv").text, server.glossary.store.version()
    wrong = [
        ("POST", "/console/api/glossary", {"json": COPAY}, 400, "already in this glossary"),
        ("POST", "/console/api/glossary", {"json": {**COPAY, "target_language": "xx"}}, 400, "unknown language"),
        ("POST", "/console/api/glossary", {"json": {**COPAY, "room": "<script>"}}, 400, "room must be a room code"),
        ("POST", "/console/api/glossary", {"json": {**COPAY, "colour": "red"}}, 400, "has no colour"),
        ("POST", "/console/api/glossary", {"json": {**COPAY, "term": 7}}, 400, "is a string"),
        ("POST", "/console/api/glossary", {"json": [COPAY]}, 400, "expected a JSON object"),
        ("POST", "/console/api/glossary", {"content": "{"}, 400, "not JSON"),
        ("POST", "/console/api/glossary", {"content": "[" * 100_000}, 413, "request body over"),
        ("PUT", f"/console/api/glossary/{term_id}", {"json": {"kind": "term", "target_term": ""}}, 400, "a term needs"),
        ("PUT", "/console/api/glossary/99999", {"json": {"target_term": "x"}}, 404, "no such glossary entry"),
        ("PUT", "/console/api/glossary/not-an-id", {"json": {"target_term": "x"}}, 404, "no such glossary entry"),
        ("DELETE", "/console/api/glossary/99999", {}, 404, "no such glossary entry"),
        ("DELETE", "/console/api/glossary/99999999999999999999999", {}, 404, "no such glossary entry"),
        ("GET", "/console/api/glossary?room=a%20b", {}, 400, "room must be a room code"),
        ("GET", "/console/api/glossary.csv?room=../x", {}, 400, "room must be a room code"),
        ("POST", "/console/api/glossary.csv", {"content": CSV_HEADER + "name,,A,,,\nterm,en,b,de,,\n",
                                               "headers": {"Content-Type": "text/csv"}}, 400, "line 3: a term needs"),
        ("POST", "/console/api/glossary.csv", {"content": CSV_HEADER, "headers": {"Content-Type": "text/plain"}},
         415, "text/csv"),
        ("POST", "/console/api/glossary.csv?replace=yes",
         {"content": CSV_HEADER, "headers": {"Content-Type": "text/csv"}}, 400, "replace is 0 or 1"),
        ("POST", "/console/api/glossary.csv", {"content": b"kind,term\nname,M\xfcller\n",
                                               "headers": {"Content-Type": "text/csv"}}, 400, "UTF-8"),
        ("POST", "/console/api/glossary.csv", {"content": "x" * (MAX_CSV_BYTES + 1),
                                               "headers": {"Content-Type": "text/csv"}}, 413, "request body over"),
    ]
    for method, path, send, status, message in wrong:
        r = op.request(method, path, **send)  # type: ignore[arg-type]
        assert r.status_code == status and message in r.json()["error"], (method, path, r.status_code, r.text)
    assert op.get("/console/api/glossary.csv").text == before and server.glossary.store.version() == version
    # the CSV route alone takes more than limits.max_body_bytes (64 KiB): a glossary of a few thousand entries
    big = CSV_HEADER + "".join(f"term,en,term number {i},de,Begriff Nummer {i},\n" for i in range(2000))
    assert len(big.encode()) > server.settings.limits.max_body_bytes
    assert op.post("/console/api/glossary.csv", content=big, headers={"Content-Type": "text/csv"}).json()[
        "imported"] == 2000
    assert len(server.glossary.glossary(None)) == 2001


async def test_a_change_made_elsewhere_reaches_the_running_server(settings: Settings, monkeypatch) -> None:
    """The CLI (another process, here in a thread) and a second GlossaryStore write the same database; the
    server's live glossary follows within a second (watch), or at once when refreshed."""
    async with background_server(settings, double_engines()) as (url, server):
        assert rendered(server, None) == []
        added = await asyncio.to_thread(cli.main, ["glossary", "add", "term", "--language", "en", "--term", "copay",
                                                    "--target-language", "de", "--target-term", "Zuzahlung"])
        assert added == 0
        deadline = time.monotonic() + 5
        while rendered(server, None) == [] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert rendered(server, None) == ["Zuzahlung"]
        assert time.monotonic() < deadline - 3.5  # within about a second

        other = GlossaryStore(TranscriptStore(settings.database_url))
        (term,) = other.terms()
        assert term.id is not None
        other.change(term.id, {"target_term": "Eigenanteil"})
        assert await server.glossary.refresh() and rendered(server, None) == ["Eigenanteil"]
        other.remove(term.id)
        assert await server.glossary.refresh() and rendered(server, None) == []


def test_the_cli_manages_the_glossary_in_the_settings_database(tmp_path: Path, capsys) -> None:
    def run(*argv: str) -> str:
        assert cli.main(["glossary", *argv]) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    assert "added 1: en: copay <-> de: Zuzahlung (server-wide)" in run(
        "add", "term", "--language", "en-GB", "--term", "copay", "--target-language", "de",
        "--target-term", "Zuzahlung")
    assert "added 2: the name 'Dr. Okonkwo' kept as written (room 4711)" in run(
        "add", "name", "Dr. Okonkwo", "--room", "4711")
    listed = run("list").splitlines()
    assert len(listed) == 2 and "server-wide" in listed[0] and "en: copay" in listed[0] and "4711" in listed[1]
    assert [t["term"] for t in json.loads(run("list", "--room", "4711", "--json"))] == ["Dr. Okonkwo"]
    assert [t["id"] for t in json.loads(run("list", "--room", "", "--json"))] == [1]
    assert "changed 1: en: copay <-> de: Eigenanteil" in run("edit", "1", "--target-term", "Eigenanteil")
    out = tmp_path / "g.csv"
    run("export", "-o", str(out))
    assert out.read_text() == CSV_HEADER + "term,en,copay,de,Eigenanteil,\nname,,Dr. Okonkwo,,,4711\n"
    assert run("export", "--room", "4711") == CSV_HEADER + "name,,Dr. Okonkwo,,,4711\n"
    assert "removed 2" in run("remove", "2")
    assert "imported 2 entries" in run("import", str(out))
    out.write_text(CSV_HEADER + "name,,Ms. Ito,,,4711\n")
    assert "imported 1 entries (replacing" in run("import", str(out), "--replace")
    assert [t["term"] for t in json.loads(run("list", "--json"))] == ["copay", "Ms. Ito"]
    store = GlossaryStore(TranscriptStore(Settings().database_url))  # the server's database (data_dir)
    assert [t.text_a for t in store.terms()] == ["copay", "Ms. Ito"]


@pytest.mark.parametrize(("argv", "message"), [
    (["add", "name", "Dr. Okonkwo", "--room", "a b"], "room must be a room code"),
    (["add", "term", "--language", "en", "--term", "copay"], "a term needs language, term"),
    (["add"], "add needs 'term' or 'name'"),
    (["edit", "1", "--term", "x"], "no glossary entry 1"),
    (["edit", "one", "--term", "x"], "'one' is not an entry's id"),
    (["edit", "1"], "give what changes"),
    (["remove", "7"], "no glossary entry 7"),
    (["import", "missing.csv"], "no such CSV file: missing.csv"),
    (["import", "BAD"], "line 3: a term needs"),
    (["import", "LATIN1"], "is not UTF-8 text"),
])
def test_cli_mistakes_are_one_line_and_exit_2(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    bad = {"BAD": (CSV_HEADER + "name,,A,,,\nterm,en,b,de,,\n").encode(), "LATIN1": b"kind,term\nname,M\xfcller\n"}
    if argv[-1] in bad:
        (tmp_path / argv[-1]).write_bytes(bad[argv[-1]])
        argv = [*argv[:-1], str(tmp_path / argv[-1])]
    assert cli.main(["glossary", *argv]) == 2
    assert message in said(capsys)
    assert GlossaryStore(TranscriptStore(Settings().database_url)).terms() == []


@pytest.mark.e2e
async def test_the_glossary_tab_in_a_browser(tmp_path: Path, settings: Settings) -> None:
    """Log in, open Glossary, add a term with the form: the server's live glossary has it and the table shows it;
    edit it inline, filter by room, delete it."""
    microphone = tmp_path / "silence.wav"
    audio.write_wav(microphone, np.zeros(8000, dtype=np.float32), 8000)
    async with background_server(settings, double_engines()) as (url, server), \
            browsers(tmp_path, [microphone]) as (browser,):
        page = await browser.page(f"{url}/console", app=None, width=1100, height=900)
        await page.evaluate(f"document.querySelector('#token').value = {OPERATOR_TOKEN!r}")
        await page.evaluate("document.querySelector('#login').click()")
        await page.wait_for("window.babelfishConsole && window.babelfishConsole.ready", 20)
        await page.evaluate("document.querySelector('[data-view=glossary]').click()")
        await page.wait_for("document.querySelector('#glossary-count').textContent.includes('0 entries')", 10)
        form = {"#gl-kind": "term", "#gl-language": "en", "#gl-term": "copay <b>x</b>", "#gl-target-language": "de",
                "#gl-target-term": "Zuzahlung", "#gl-room": "4711"}
        for selector, value in form.items():
            await page.evaluate(f"document.querySelector({selector!r}).value = {value!r}")
        await page.evaluate("document.querySelector('#gl-add').click()")
        await page.wait_for("document.querySelectorAll('[data-term]').length === 1", 10)
        row = await page.evaluate("document.querySelector('[data-term]').textContent")
        assert "copay <b>x</b>" in row and "Zuzahlung" in row and "4711" in row  # as text, not as markup
        assert await page.evaluate("document.querySelector('[data-term] b') === null")
        assert rendered(server, "4711", "the copay <b>x</b>") == ["Zuzahlung"]
        if os.environ.get("BABELFISH_SCREENSHOTS"):
            await page.screenshot(Path(os.environ["BABELFISH_SCREENSHOTS"]) / "console-glossary.png")

        await page.evaluate("document.querySelector('[data-term] .gl-edit').click()")
        await page.evaluate("document.querySelector('[data-term] [name=target_term]').value = 'Eigenanteil'")
        await page.evaluate("document.querySelector('[data-term] .gl-save').click()")
        await page.wait_for("document.querySelector('[data-term]').textContent.includes('Eigenanteil') && "
                            "!document.querySelector('[data-term] .gl-save')", 10)
        assert rendered(server, "4711", "the copay <b>x</b>") == ["Eigenanteil"]

        choose = "(room) => { const f = document.querySelector('#gl-filter'); f.value = room; " \
                 "f.dispatchEvent(new Event('change')); }"
        await page.evaluate(f"({choose})('')")  # the server-wide entries only
        await page.wait_for("document.querySelectorAll('[data-term]').length === 0", 10)
        await page.evaluate(f"({choose})('4711')")
        await page.wait_for("document.querySelectorAll('[data-term]').length === 1", 10)
        await page.evaluate("document.querySelector('[data-term] .gl-delete').click()")
        await page.wait_for("document.querySelectorAll('[data-term]').length === 0", 10)
        assert rendered(server, "4711", "the copay <b>x</b>") == []
        assert not [line for line in browser.console if "Error" in line], browser.console
