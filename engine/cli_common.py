"""What the two command lines share (``python -m engine run`` in engine/cli.py and
``python -m engine batch`` in engine/batch/cli.py): argument parsers, the bounds check and the
one-line error report. Neither command line imports the other's helpers.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import sys
import tempfile
from typing import Sequence

from .errors import InputError

#: Where the CLI writes the traceback of an unexpected error (one clear line on stderr).
DEBUG_LOG = os.path.join(tempfile.gettempdir(), "maestro-engine-debug.log")


def parse_input(text: str) -> tuple[str, str]:
    """``--input MODALITY=PATH`` -> (modality in lower case, path)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--input must be MODALITY=PATH (got '{text}')")
    return name.lower(), path


def parse_date(text: str) -> tuple[str, str, _dt.date]:
    """``--date MODALITY=PATH=YYYY-MM-DD`` -> (modality in lower case, path, date)."""
    name, sep, rest = text.partition("=")
    path, sep2, day = rest.rpartition("=")
    if not (sep and sep2 and name and path):
        raise argparse.ArgumentTypeError(f"--date must be MODALITY=PATH=YYYY-MM-DD (got '{text}')")
    try:
        return name.lower(), path, _dt.date.fromisoformat(day)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--date: '{day}' is not YYYY-MM-DD") from exc


def add_model_and_inputs(p: argparse.ArgumentParser,
                         model_help: str = "ONNX model exported by MAESTRO's training",
                         input_help: str = "an input raster of modality M (repeat: one per date "
                                           "and modality)") -> None:
    """The arguments every engine command that runs a model takes: ``--model``, ``--input
    M=PATH`` (repeated) and ``--date M=PATH=YYYY-MM-DD`` (repeated)."""
    p.add_argument("--model", required=True, help=model_help)
    p.add_argument("--input", action="append", type=parse_input, default=[], metavar="M=PATH",
                   help=input_help)
    p.add_argument("--date", action="append", type=parse_date, default=[],
                   metavar="M=PATH=YYYY-MM-DD", help="explicit date of one input raster")


def check_bounds(bounds: Sequence[float] | None, option: str = "--bounds") -> None:
    """Refuse bounds that are not four finite numbers with xmin < xmax and ymin < ymax.

    Raises:
        InputError: naming the option and the offending values.
    """
    if bounds is None:
        return
    if len(bounds) != 4:
        raise InputError(f"{option} needs four numbers XMIN YMIN XMAX YMAX (got {len(bounds)})")
    bad = [v for v in bounds if not math.isfinite(v)]
    if bad:
        raise InputError(f"{option} {' '.join(map(str, bounds))}: {bad[0]} is not a finite "
                         "number (XMIN YMIN XMAX YMAX in the reference raster's CRS)")
    xmin, ymin, xmax, ymax = bounds
    if not xmin < xmax:
        raise InputError(f"{option}: XMIN {xmin:g} must be less than XMAX {xmax:g} "
                         "(order: XMIN YMIN XMAX YMAX)")
    if not ymin < ymax:
        raise InputError(f"{option}: YMIN {ymin:g} must be less than YMAX {ymax:g} "
                         "(order: XMIN YMIN XMAX YMAX)")


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (line breaks become '; ')."""
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def report_unexpected(exc: BaseException) -> str:
    """Append the traceback to :data:`DEBUG_LOG`; returns the log's path ('' if unwritable)."""
    import traceback

    try:
        with open(DEBUG_LOG, "a", encoding="utf-8") as f:
            f.write(f"--- {_dt.datetime.now().isoformat(timespec='seconds')} "
                    f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
            f.write("".join(traceback.format_exception(exc)))
        return DEBUG_LOG
    except OSError:
        return ""
