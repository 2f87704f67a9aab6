"""The one table reader, and artifact files written and read back as parquet or text.

:func:`read_table` takes what a user or a pipeline parameter names as data: a parquet or
CSV file, a directory of parquet files, or ``scenario:<name>[:rows]`` (a seed scenario
generated on the fly). Every failure is a :class:`~components.errors.DataError` naming
the file and the fix; the CLI, the KFP steps and the demo all read through it.

>>> import tempfile, pandas as pd
>>> folder = Path(tempfile.mkdtemp())
>>> write_frame(pd.DataFrame({"x": [1, 2]}), str(folder / "a" / "artifact"))
>>> read_table(folder / "a" / "artifact", "reference")["x"].tolist()
[1, 2]
>>> read_table(folder / "missing.parquet", "current")
Traceback (most recent call last):
...
components.errors.DataError: current data 'missing.parquet' not found (fix: check the path, or write data with 'driftloop scenario <name> --out DIR')
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def read_table(source: str | Path, role: str = "input", timestamp: str | None = None) -> pd.DataFrame:
    """Rows from a parquet/CSV file, a parquet directory or ``scenario:<name>[:rows]``.

    ``role`` names the data in errors ("reference", "labels", ...); ``timestamp``, when
    given, must be a column of the result.
    """
    import pandas as pd

    text = str(source)
    if text.startswith("scenario:"):
        from components.data.scenarios import generate

        _, name, *rest = text.split(":")
        rows = rest[0] if rest else ""
        if rows and not rows.isdigit():
            raise DataError(f"{role} source {text!r}: rows {rows!r} is not a number", fix="use scenario:<name> or scenario:<name>:<rows>")
        frame = generate(name, rows=int(rows) if rows else None, seed=0)
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"{role} data {path.name!r} not found", fix="check the path, or write data with 'driftloop scenario <name> --out DIR'")
        suffix = path.suffix.lower()
        try:
            if path.name.endswith((".csv", ".csv.gz")):
                frame = pd.read_csv(path)
            elif path.is_dir() or suffix in (".parquet", ".pq", ""):
                frame = pd.read_parquet(path)
            else:
                raise DataError(f"{role} data {str(path)!r} is neither parquet nor CSV", fix="use a .parquet or .csv file, or a directory of parquet files")
        except DataError:
            raise
        except Exception as exc:  # any reader failure is the user's file, not a bug here
            raise DataError(f"cannot read {role} data {str(path)!r}: {type(exc).__name__}: {exc}", fix="pass a valid parquet or CSV file") from None
    if timestamp and timestamp not in frame.columns:
        raise DataError(f"{role} data {text!r} has no timestamp column {timestamp!r}", fix="set policy.timestamp to the event-time column")
    return frame


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a data artifact as parquet (an artifact path may have no suffix)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a data artifact written by :func:`write_frame`."""
    return read_table(path, "artifact")


def write_text(path: str | Path, text: str) -> None:
    """Write an artifact's text, creating its directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def read_text(path: str | Path) -> str:
    """Read an artifact's text."""
    return Path(path).read_text()


def as_frame(value: Any, role: str = "input", timestamp: str | None = None) -> pd.DataFrame:
    """``value`` itself when it is a DataFrame, else :func:`read_table` of it."""
    import pandas as pd

    return value if isinstance(value, pd.DataFrame) else read_table(value, role, timestamp)
