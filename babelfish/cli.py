"""``babelfish serve | check-config | call | translate | models | bench | ray-serve | transcripts | glossary |
phone | languages``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from babelfish.config.settings import load_settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Any:
    return load_settings(getattr(args, "config", None), **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    from babelfish.config import logs
    from babelfish.engines import choice
    from babelfish.engines.registry import load_engines
    from babelfish.server.serving import listener, serve

    overrides: dict[str, Any] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    settings = _settings(args, **overrides)
    choice.check(settings)  # a chosen engine without its credentials or package: one line, before any model loads
    logs.configure(settings.log_format, logging.getLogger().level)
    # the address first (a port in use is said at once, not after a minute of loading models), then the
    # engines (a missing model is one line, not a failed startup's traceback), then the server
    sock = listener(settings.host, settings.port)
    engines = load_engines(settings)
    serve(settings, engines, sock)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Whether the settings are ready to serve a public number: one line per problem and exit 2, else a
    short summary (babelfish/server/preflight.py)."""
    from babelfish.server import preflight

    if args.env_file:
        os.environ.update(preflight.read_env_file(args.env_file))
    settings = _settings(args)  # a bad file, key or value: one line from main(), exit 2
    report = preflight.check(settings)
    for error in report.errors:
        print(f"babelfish: {error}", file=sys.stderr)
    if not report.ok:
        return 2
    print(f"babelfish: configuration OK ({getattr(args, 'config', None) or 'environment only'})")
    print("\n".join(f"  {line}" for line in report.summary))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from babelfish.devtools.conversation import Party, run_call

    parties = [Party.parse(spec) for spec in args.party]
    if len(parties) < 2:
        print("babelfish call: give at least two --party LANG:FILE.wav", file=sys.stderr)
        return 2
    settings = _settings(args)
    if args.server and settings.security.operator_token is None:
        raise ValueError("call --server reads the server's captions with its operator token: set "
                         "BABELFISH_SECURITY__OPERATOR_TOKEN (or security.operator_token in --config) to the "
                         "server's")
    from websockets.exceptions import InvalidStatus

    try:
        result = asyncio.run(run_call(parties, settings=settings, server=args.server, out=Path(args.out),
                                      pace=args.pace, gap_s=args.gap))
    except InvalidStatus as exc:
        raise ValueError(f"{args.server} refused the caption feed (HTTP {exc.response.status_code}): is "
                         "BABELFISH_SECURITY__OPERATOR_TOKEN the server's operator token?") from None
    except OSError as exc:
        raise ValueError(f"cannot reach {args.server or 'the server'}: {exc}") from None
    return 0 if result.ok else 1


def cmd_translate(args: argparse.Namespace) -> int:
    from babelfish.core import audio
    from babelfish.engines.registry import load_engines
    from babelfish.pipeline.stream import one_shot

    settings = _settings(args, default_languages=[args.source, args.target])
    if not Path(args.input).is_file():
        raise FileNotFoundError(f"no such recording: {args.input} (give a WAV file)")
    samples, rate = audio.read_wav(args.input)
    engines = load_engines(settings)
    text, translation, out, timings = asyncio.run(one_shot(engines, samples, rate, args.source, args.target))
    audio.write_wav(args.out, out, 22050)
    if args.json:
        print(json.dumps({"source_text": text, "translation": translation,
                          "timings": {k: round(v, 3) for k, v in timings.items()}}, ensure_ascii=False))
    else:
        print(f"{args.source}: {text}\n{args.target}: {translation}\nwrote {args.out}")
        print("  ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from babelfish.engines import downloads as models

    settings = _settings(args)
    if args.action == "list":
        return models.cli_list(settings, as_json=args.json)
    return models.cli_fetch(settings, args.name)


def cmd_bench(args: argparse.Namespace) -> int:
    from babelfish.devtools import bench

    return bench.main(args)


def cmd_ray_serve(args: argparse.Namespace) -> int:
    """Deploy (or update) the stages' Serve applications with the replicas, CPUs and GPUs of the ``ray``
    settings. On a cluster the applications outlive this command; without an address the local Ray lives
    as long as it does."""
    import time

    from babelfish.engines import choice, ray_serve

    settings = _settings(args)
    if args.address:
        settings.ray.address = args.address
    stages = args.stage or settings.ray.stages or list(ray_serve.STAGES)
    settings.ray.stages = stages
    choice.check(settings)
    ray_serve.deploy(settings, stages=stages)
    for stage in stages:
        cfg = getattr(settings.ray, stage)
        print(f"deployed {ray_serve.app_name(settings, stage)}: {cfg.num_replicas} replicas, "
              f"{cfg.num_cpus:g} CPU and {cfg.num_gpus:g} GPU each")
    if settings.ray.address is None:
        print("local Ray: serving until Ctrl-C (servers on this machine: BABELFISH_RAY__ADDRESS=auto)")
        while True:
            time.sleep(3600)
    return 0


def cmd_transcripts(args: argparse.Namespace) -> int:
    """Reads the transcript database directly (no server or token needed: this is the machine's own data)."""
    from babelfish.transcripts.formats import iso_time, render
    from babelfish.transcripts.store import TranscriptStore

    settings = _settings(args)
    store = TranscriptStore(settings.database_url, mask_numbers=settings.transcripts.mask_numbers)
    try:
        if args.action == "list":
            rows = store.list_calls(limit=args.limit)
            if args.json:
                print(json.dumps(rows, indent=2))
                return 0
            if not rows:
                print(f"no calls in {settings.database_url}")
            for row in rows:
                who = ", ".join(f"{leg['number']} ({leg['language']})" for leg in row["legs"])
                print(f"{row['id']}  {iso_time(row['started_at'])}  {row['utterances']:3d} utterances  {who}")
            return 0
        if args.action == "purge":
            days = args.older_than or settings.transcripts.retention_days
            if days is None:
                raise ValueError("give --older-than DAYS or set transcripts.retention_days")
            print(f"deleted {store.purge(days)} calls older than {days:g} days")
            return 0
        if not args.call:
            raise ValueError(f"transcripts {args.action} needs a call id (see: babelfish transcripts list)")
        call = store.get_call(args.call)
        if call is None:
            raise ValueError(f"no call {args.call!r} in {settings.database_url}")
        _emit(render(call, "txt" if args.action == "show" else args.format),
               args.out if args.action == "export" else None)
        return 0
    finally:
        store.close()


def cmd_glossary(args: argparse.Namespace) -> int:
    """The operator's glossary, in the transcript database the settings name (as the server's): a running
    server on the same database uses a change within a second (docs/glossary.md)."""
    from babelfish.transcripts.glossary import GlossaryStore, make_term
    from babelfish.transcripts.store import TranscriptStore

    settings = _settings(args)
    store = TranscriptStore(settings.database_url, mask_numbers=settings.transcripts.mask_numbers)
    glossary = GlossaryStore(store)
    fields = {"language": args.language, "term": args.term, "target_language": args.target_language,
              "target_term": args.target_term, "room": args.room}
    try:
        if args.action == "list":
            terms = glossary.terms(args.room)
            if args.json:
                print(json.dumps([t.as_dict() for t in terms], ensure_ascii=False, indent=2))
            elif not terms:
                print(f"no glossary entries{'' if args.room is None else ' for this room'} in "
                      f"{settings.database_url}", file=sys.stderr)
            for t in [] if args.json else terms:
                what = (f"{t.text_a}  (a name)" if t.kind == "name"
                        else f"{t.language_a}: {t.text_a}  <->  {t.language_b}: {t.text_b}")
                print(f"{t.id:5d}  {t.room or 'server-wide':12}  {what}")
            return 0
        if args.action == "add":
            kind = _one_of(args.values, "add needs 'term' or 'name' (babelfish glossary add term --language en "
                                        "--term copay --target-language de --target-term Zuzahlung)")
            if kind == "name" and args.term is None and len(args.values) == 2:
                fields["term"] = args.values[1]
            elif len(args.values) > 1:
                raise ValueError(f"glossary add {kind}: unexpected {' '.join(args.values[1:])!r}")
            term = glossary.add(make_term(kind, **{k: v or "" for k, v in fields.items()}))
            print(f"added {term.id}: {_described(term.as_dict())}")
            return 0
        if args.action in ("edit", "remove"):
            term_id = _entry_id(args.values, args.action)
            if args.action == "remove":
                if not glossary.remove(term_id):
                    raise ValueError(f"no glossary entry {term_id} (see: babelfish glossary list)")
                print(f"removed {term_id}")
                return 0
            changes = {k: v for k, v in {**fields, "kind": args.kind}.items() if v is not None}
            if not changes:
                raise ValueError("glossary edit: give what changes (--term, --target-term, --language, "
                                 "--target-language, --room, --kind)")
            changed = glossary.change(term_id, changes)
            if changed is None:
                raise ValueError(f"no glossary entry {term_id} (see: babelfish glossary list)")
            print(f"changed {term_id}: {_described(changed.as_dict())}")
            return 0
        if args.action == "import":
            path = _one_of(args.values, "glossary import needs a CSV file (- for standard input)")
            if path != "-" and not Path(path).is_file():
                raise FileNotFoundError(f"no such CSV file: {path}")
            try:
                text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
            except UnicodeDecodeError:
                raise ValueError(f"{path} is not UTF-8 text (save the CSV as UTF-8)") from None
            count = glossary.import_csv(text, replace=args.replace)
            print(f"imported {count} entries{' (replacing the rooms named in the file)' if args.replace else ''}; "
                  f"the glossary has {len(glossary.terms())}")
            return 0
        # export
        text = glossary.export_csv(args.room)
        _emit(text, args.out, f" ({text.count(chr(10)) - 1} entries)")
        return 0
    finally:
        store.close()


def _one_of(values: list[str], missing: str) -> str:
    if not values:
        raise ValueError(missing)
    return values[0]


def _entry_id(values: list[str], action: str) -> int:
    given = _one_of(values, f"glossary {action} needs the entry's id (see: babelfish glossary list)")
    if not given.isdigit() or len(given) > 18 or len(values) > 1:
        raise ValueError(f"glossary {action}: {' '.join(values)!r} is not an entry's id (a number)")
    return int(given)


def _described(entry: dict[str, object]) -> str:
    room = f" (room {entry['room']})" if entry["room"] else " (server-wide)"
    if entry["kind"] == "name":
        return f"the name {entry['term']!r} kept as written{room}"
    return f"{entry['language']}: {entry['term']} <-> {entry['target_language']}: {entry['target_term']}{room}"


def _emit(text: str, out: str | None, note: str = "") -> None:
    """``text`` into the file ``out`` (said on standard error), or to standard output."""
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}{note}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def cmd_phone(args: argparse.Namespace) -> int:
    """Join links for the browser phone (``phone.access`` 'link'), signed with the server's own key: made
    from the same settings the server reads (``phone.link_secret`` or ``security.operator_token``)."""
    import time

    from babelfish.server.phone import language_tag, link_url
    from babelfish.server.phonelinks import PhoneLinks

    settings = _settings(args)
    links = PhoneLinks.from_settings(settings)
    if args.action == "revoke":
        if not args.id:
            raise ValueError("phone revoke needs the link's id (printed when it was issued)")
        until = links.revoke(args.id)
        print(f"revoked join link {args.id} (kept on the list in {links.revoked_path} until "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))})")
        return 0
    if not args.room or not args.language:
        raise ValueError("phone link needs --room CODE and --language TAG")
    language = language_tag(args.language)
    if language is None:
        raise ValueError(f"unknown language {args.language!r}")
    token, link = links.issue(args.room, language, args.ttl or settings.phone.link_ttl_s)
    base = settings.public_url or ""
    if not base:
        print("babelfish: warning: public_url is not set (BABELFISH_PUBLIC_URL): the link is relative to "
              "the server's address", file=sys.stderr)
    print(link_url(base, token))
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(link.expires))
    print(f"link {link.id}: room {link.room}, {link.language}, until {expires} (usable by any number of joins "
          f"until then; revoke: babelfish phone revoke {link.id})", file=sys.stderr)
    if settings.phone_access != "link":
        print(f"babelfish: note: phone.access is {settings.phone_access!r}: the server does not require links",
              file=sys.stderr)
    return 0


def cmd_languages(args: argparse.Namespace) -> int:
    """What each offered language can do on the engines the settings choose, and what the menu offers."""
    import json

    from babelfish.engines import support

    settings = _settings(args)
    menu = support.menu(settings)
    rows = support.table(settings)
    if args.json:
        print(json.dumps({"menu": menu, "languages": rows}, ensure_ascii=False))
        return 0
    measured = support.measured()
    print(f"menu: {', '.join(menu) or 'off'}  (verdicts: {measured.get('command', 'none saved')}, "
          f"{measured.get('machine', {}).get('date', '-')})")
    for row in rows:
        why = "; ".join(row["reasons"])
        print(f"  {row['language']:3} {row['name']:10} {row['rating']:10} {'menu' if row['in_menu'] else '    '} "
              f"{row['voice']:16} {why}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("babelfish")
    except PackageNotFoundError:  # run from a source tree that was never installed
        installed = "unknown"
    parser = argparse.ArgumentParser(prog="babelfish", description=__doc__)
    parser.add_argument("--version", action="version", version=f"babelfish {installed}")
    parser.add_argument("--config", help="TOML settings file, or the original 2018 config.py (see README)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server Vonage calls")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check-config", help="check that the settings, secrets and models are ready to serve")
    p.add_argument("--env-file", metavar="FILE", help="read KEY=VALUE secrets from FILE first (the systemd "
                   "unit's EnvironmentFile)")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("call", help="simulate a call through the fake Vonage")
    p.add_argument("--party", action="append", required=True, metavar="LANG:FILE[,FILE...]",
                   help="a caller: their language and what they say (several files = several turns)")
    p.add_argument("--server", help="base URL of a running server (default: start one in-process)")
    p.add_argument("--out", default="out", help="where transcript.json and <leg>-heard.wav go")
    p.add_argument("--pace", type=float, default=1.0, help="streaming speed (1 = real time)")
    p.add_argument("--gap", type=float, default=1.0, help="seconds between one's translation and the reply")
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("translate", help="one recording through the pipeline")
    p.add_argument("input", metavar="IN.wav")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--to", dest="target", required=True)
    p.add_argument("--out", required=True, metavar="OUT.wav")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("models", help="list or fetch engines' models")
    p.add_argument("action", choices=["list", "fetch"])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("bench", help="latency, quality, load, end-of-turn and engine-overlap benchmarks")
    p.add_argument("kind", choices=["latency", "quality", "load", "turns", "threads", "languages", "doubletalk",
                                          "glossary"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--limit", type=int, default=None, help="fewer items, for a quick run (threads: sentences)")
    p.add_argument("--replicas", metavar="N,N,...", help="load: run the engines on Ray Serve with each number "
                   "of replicas per stage and report the conversations held with each")
    p.add_argument("--only", metavar="SET,...", help="quality: only these sets (names or parts of names, e.g. "
                   "text,dialogue,de-voice), with the recognition sets they need; languages: only these "
                   "languages (e.g. de,pl); glossary: text and/or speech")
    p.add_argument("--long", type=int, default=None, metavar="N", help="latency: long turns (8-30 s) measured "
                   "in each interpretation mode (default 8; 0: none)")
    p.add_argument("--speech-rate", type=int, choices=[8000, 16000], default=8000, metavar="HZ",
                   help="glossary: the rate the spoken sentences reach the recognizer at (8000: a phone line, "
                   "the default; 16000: a wideband caller, e.g. the browser phone)")
    p.add_argument("--dev", action="store_true", help="glossary: the dev split (every glossary.translator "
                   "style, to choose one on); latency: long turns from the dev half of the prompts "
                   "(to choose settings on; the default, test, is the one to quote); languages: the dev half, "
                   "and the choices made on it (voice style, prompt, decoding per language)")
    p.add_argument("--save", action="store_true", help="languages: keep the verdicts where the server reads "
                   "them (babelfish/engines/measured_languages.json)")
    p.add_argument("--direction", choices=["both", "en-de", "all"], default="both",
                   help="latency: en -> de (recorded English prompts) and de -> en (held-out German lines in "
                   "the German voice), or en -> de only, or all: both and then the two alternating in one "
                   "conversation")
    p.add_argument("--mode", choices=["both", "simultaneous", "consecutive"], default="both",
                   help="latency: the interpretation modes measured (both: side by side, simultaneous first)")
    p.add_argument("--dev-sweep", action="store_true", help="turns: Smart Turn's settings on the dev split "
                   "(what segmenter.smart_turn_threshold was chosen from)")
    p.add_argument("--compare", action="append", metavar="SECTION.KEY=VALUE", default=[],
                   help="latency, load: also measure with this setting changed, in the same run, and print "
                   "both with their ratio (repeatable, e.g. translator.model=gemma-270m)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("ray-serve", help="deploy the engines as Ray Serve applications on a Ray cluster")
    p.add_argument("--address", help="Ray cluster address (default: ray.address; unset: a local Ray, kept "
                   "running until Ctrl-C)")
    p.add_argument("--stage", action="append", choices=["recognizer", "translator", "synthesizer"],
                   help="a stage to deploy (repeatable; default: ray.stages, or all three)")
    p.set_defaults(func=cmd_ray_serve)

    p = sub.add_parser("transcripts", help="list, show, export or purge stored call transcripts")
    p.add_argument("action", choices=["list", "show", "export", "purge"])
    p.add_argument("call", nargs="?", help="call id (show, export)")
    p.add_argument("--format", choices=["json", "txt", "srt", "vtt"], default="txt", help="export format")
    p.add_argument("--out", help="export to this file instead of stdout")
    p.add_argument("--limit", type=int, default=50, help="list: most recent calls shown")
    p.add_argument("--json", action="store_true", help="list: as JSON")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="purge: age (default: retention_days)")
    p.set_defaults(func=cmd_transcripts)

    p = sub.add_parser("glossary", help="the operator's glossary: terms rendered as given, names kept as written",
                       description="list | add term|name | edit ID | remove ID | import FILE.csv | export "
                       "(docs/glossary.md). Entries apply server-wide, or with --room CODE in that room only.")
    p.add_argument("action", choices=["list", "add", "edit", "remove", "import", "export"])
    p.add_argument("values", nargs="*", metavar="ARG",
                   help="add: term or name (and the name); edit, remove: the entry's id; import: the CSV file")
    p.add_argument("--room", help="the room code an entry belongs to (list, export: only that room's; '': the "
                   "server-wide ones)")
    p.add_argument("--kind", choices=["term", "name"], help="edit: make the entry a term or a name")
    p.add_argument("--language", help="a term's language (e.g. en)")
    p.add_argument("--term", help="the term in --language (or the name)")
    p.add_argument("--target-language", help="the language of its rendering (e.g. de)")
    p.add_argument("--target-term", help="its rendering in --target-language (applies both ways)")
    p.add_argument("--replace", action="store_true", help="import: the rooms named in the file lose their "
                   "other entries")
    p.add_argument("--json", action="store_true", help="list: as JSON")
    p.add_argument("-o", "--out", help="export: to this file instead of standard output")
    p.set_defaults(func=cmd_glossary)

    p = sub.add_parser("phone", help="issue or revoke join links for the browser phone")
    p.add_argument("action", choices=["link", "revoke"])
    p.add_argument("id", nargs="?", help="revoke: the link's id")
    p.add_argument("--room", help="link: the room code the link joins")
    p.add_argument("--language", help="link: the language of whoever joins with it (e.g. fr-FR)")
    p.add_argument("--ttl", type=float, help="link: seconds it is valid (default: phone.link_ttl_s)")
    p.set_defaults(func=cmd_phone)

    p = sub.add_parser("languages", help="what each language can do here, and what the menu offers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_languages)

    # `babelfish serve --config FILE` as well as `babelfish --config FILE serve` (SUPPRESS: a subcommand
    # without it keeps the one given before it)
    for command in sub.choices.values():
        command.add_argument("--config", default=argparse.SUPPRESS,
                             help="TOML settings file, or the original 2018 config.py (see README)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from babelfish.config import logs
    from babelfish.core.worker import EngineError

    args = build_parser().parse_args(argv)
    logs.configure("text", logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `babelfish transcripts list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (FileNotFoundError, ValueError, EngineError, PermissionError) as exc:
        # a mistake of the user's (a file, a setting, a model, a port): one line that says what to do
        if args.debug:
            raise
        print(f"babelfish: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f"babelfish: unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
