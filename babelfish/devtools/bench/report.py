"""What every benchmark reports: the machine it ran on, a result as JSON or a table, and a setting varied."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's name (``model name`` in /proc/cpuinfo), since absolute times differ between machines."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"



def machine() -> dict[str, Any]:
    import os

    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "machine": platform.machine(),
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}



def with_setting(settings: Any, assignment: str) -> Any:
    """``settings`` with one ``section.key=value`` changed (validated like the settings file)."""
    path, sep, value = assignment.partition("=")
    section_name, dot, key = path.strip().partition(".")
    section = getattr(settings, section_name, None) if sep and dot else None
    if section is None or key not in type(section).model_fields:
        raise SystemExit(f"--compare {assignment!r}: expected SECTION.KEY=VALUE with a known setting, "
                         "e.g. translator.model=gemma-270m or synthesizer.voices={\"de\": \"espeak:de\"}")
    raw: Any = value.strip()
    if raw[:1] in "{[":  # a table or a list, as JSON: synthesizer.voices={"de": "espeak:de"}
        raw = json.loads(raw)
    changed = type(section).model_validate({**section.model_dump(), key: raw})
    return settings.model_copy(update={section_name: changed})



def emit(result: dict[str, Any], table: str, args: argparse.Namespace) -> None:
    result.setdefault("machine", machine())
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(table)
