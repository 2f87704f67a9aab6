"""The fault matrix's figures: each row of the matrix writes one JSON file into
``test-artifacts/faults/`` as it runs, and :func:`render` turns them into the table of
docs/reliability.md (``python tests/serving/fault_report.py --write`` replaces the table
between the ``faults-table`` markers with the last run's rows).

>>> row = {"row": "kill -9", "test": "t[a]", "backend": "stand-in", "end_state": "promoted", "aliases": "champion = v2 = served",
...        "requests": 10, "failed_outside_fault": 0, "failed_inside_fault": 0, "logged": 10, "lost": 0, "seconds": 3.2}
>>> print(render([row]).splitlines()[2])
| kill -9 (`t[a]`) | stand-in | promoted | champion = v2 = served | 0 of 10 | 0 of 10 | 3 s |
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FAULTS_DIR = REPO_ROOT / "test-artifacts" / "faults"
DOC = REPO_ROOT / "docs" / "reliability.md"
START, END = "<!-- faults-table:start -->", "<!-- faults-table:end -->"
HEADER = ("| fault (test) | backend | end state | aliases / audit | client requests failed outside the fault (inside) | "
          "log records lost | wall time |\n| --- | --- | --- | --- | --- | --- | ---: |")


def write_row(test: str, row: str, **figures: Any) -> Path:
    """Store one row's figures (``test``: the pytest node id) as ``test-artifacts/faults/<slug>.json``
    (``$DRIFTLOOP_FAULTS_DIR`` instead when set, e.g. for a repeated run that must not replace the
    matrix's figures); also appended as a JSON line to ``$DRIFTLOOP_FAULTS_REPORT`` when set."""
    directory = Path(os.environ.get("DRIFTLOOP_FAULTS_DIR") or FAULTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    data = {"row": row, "test": test.split("::")[-1], **figures}
    path = directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", test.split("::")[-1]) + ".json")
    path.write_text(json.dumps(data, indent=1, default=str))
    extra = os.environ.get("DRIFTLOOP_FAULTS_REPORT")
    if extra:
        with open(extra, "a") as f:
            f.write(json.dumps(data, default=str) + "\n")
    return path


def _count(failed: Any, total: Any, inside: Any = None) -> str:
    if total is None:
        return "n/a"
    text = f"{failed} of {total:,}" if isinstance(total, int) else f"{failed} of {total}"
    return text + (f" ({inside} inside)" if inside else "")


def render(rows: list[dict[str, Any]]) -> str:
    """The markdown table of ``rows`` (the order given)."""
    lines = [HEADER]
    for r in rows:
        lines.append(f"| {r['row']} (`{r['test']}`) | {r['backend']} | {r['end_state']} | {r.get('aliases', '-')} | "
                     f"{_count(r.get('failed_outside_fault'), r.get('requests'), r.get('failed_inside_fault'))} | "
                     f"{_count(r.get('lost'), r.get('logged'))} | {r.get('seconds', 0):.0f} s |")
    return "\n".join(lines)


def load(directory: Path = FAULTS_DIR) -> list[dict[str, Any]]:
    """Every stored row, in the order of the ``order`` field (the matrix's order), then by name."""
    rows = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    return sorted(rows, key=lambda r: (r.get("order", 99), r["test"]))


def sync_doc(table: str, doc: Path = DOC) -> bool:
    """Replace the table between the markers in ``doc``; True if the text changed."""
    text = doc.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{doc}: no {START} ... {END} block; add the markers where the table goes")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table}\n{END}{tail}"
    if new != text:
        doc.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render the fault matrix from test-artifacts/faults/*.json.")
    p.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(REPO_ROOT)}")
    args = p.parse_args(argv)
    rows = load()
    if not rows:
        print(f"no rows in {FAULTS_DIR}: run `pytest -m faults tests/serving` first", file=sys.stderr)
        return 1
    table = render(rows)
    if args.write:
        print(f"{DOC.relative_to(REPO_ROOT)}: {'updated' if sync_doc(table) else 'already up to date'} ({len(rows)} rows)")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
