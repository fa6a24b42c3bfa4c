"""What every bench records with its results (machine, versions, time), and how it writes them (JSON + markdown)."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path


def environment(tools: tuple[str, ...]) -> dict:
    """Machine, tool versions and time of the run: results are compared across runs by these."""
    from edgeprune.devices.fingerprint import cpu_id, cpu_model

    versions = {}
    for t in tools:
        try:
            versions[t] = metadata.version(t)
        except metadata.PackageNotFoundError:
            versions[t] = "not installed"
    return {"machine": {"cpu": cpu_model(), "cpu_id": cpu_id(), "cores": os.cpu_count(), "system": platform.platform(),
                        "python": platform.python_version()},
            "versions": versions, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_results(dest: str | Path, stem: str, out: dict, lines: list[str]) -> None:
    """dest/stem.json and dest/stem.md, each written atomically; the JSON is also printed."""
    import json

    from edgeprune.files import atomic_write_json, atomic_write_text

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dest / f"{stem}.json", out)
    atomic_write_text(dest / f"{stem}.md", "\n".join(lines) + "\n")
    print(json.dumps(out, indent=1))


def table(columns: list[str], rows: list[list], right: int = 0) -> list[str]:
    """A markdown table; the last `right` columns right-aligned (numbers)."""
    align = ["---"] * (len(columns) - right) + ["---:"] * right
    return ["| " + " | ".join(columns) + " |", "|" + "|".join(align) + "|"] + \
        ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]


def heading(title: str, out: dict, what: str) -> list[str]:
    """A report's first lines: title, then the machine and time of the run before what was measured."""
    m = out["machine"]
    return [f"# {title}", "", f"{m['cpu']} ({m['cores']} cores), {out['generated']}; {what}", ""]
