"""The job manifest: ``manifest.json`` in the output folder, the record that makes a batch
job resumable.

It holds the job's parameters (model checksum, inputs, grid, options that change pixels) and,
per block, its status (``pending``, ``done``, ``failed``), file name (relative to the output
folder), sha256, timing and, once done, ``dates``: per modality the dates the model saw in that
block (the engine's ``RunReport.dates``), so that a resumed job reports the dates of every
block, not only of those it computed. Manifests written before that field are still read: their
blocks simply have no recorded dates (:meth:`Manifest.dates`).

Only the driver (the process that submits the Dask tasks) writes it, always through a
temporary file renamed over the old one, so a crash leaves either the previous or the new
manifest, never a torn one. A block counts as finished only if the
manifest says ``done`` *and* its file exists with the recorded sha256.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from engine.errors import InputError, OutputError

MANIFEST_NAME = "manifest.json"
FORMAT = "maestro-batch-manifest"
VERSION = 1


class JobMismatchError(InputError):
    """The output folder holds a job with other parameters."""


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for part in iter(lambda: f.read(chunk), b""):
            h.update(part)
    return h.hexdigest()


def file_fingerprint(path: str) -> dict[str, Any]:
    """What identifies an input file cheaply: absolute path, size, modification time.

    Inputs can be tens of GB of mosaics, so they are not hashed; a rewritten input changes
    its size or time and makes a re-run refuse to mix old and new blocks.
    """
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Manifest:
    """Per-block state of one job in ``folder``; ``save()`` writes it atomically.

    ``min_interval_s`` throttles the rewrites while blocks stream in (the whole file is
    rewritten each time; with thousands of blocks one rewrite per block would be quadratic).
    A block finished but not yet saved when the driver dies is simply redone.
    """

    def __init__(self, folder: str, job: dict[str, Any], blocks: dict[str, dict[str, Any]],
                 min_interval_s: float = 1.0):
        self.folder = folder
        self.job = job
        self.blocks = blocks
        self.min_interval_s = min_interval_s
        self._last_save = 0.0
        self._dirty = False

    @property
    def path(self) -> str:
        return os.path.join(self.folder, MANIFEST_NAME)

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str, job: dict[str, Any], restart: bool = False) -> "Manifest":
        """The manifest of ``folder`` for ``job``: the existing one if its job parameters are
        the same, a new empty one if there is none. Other parameters raise
        ``JobMismatchError`` unless ``restart``, which discards the old job's outputs."""
        path = os.path.join(folder, MANIFEST_NAME)
        if not os.path.exists(path):
            return cls(folder, job, {})
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}, not {FORMAT!r}")
            old_job, old_blocks = doc["job"], doc["blocks"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if not restart:
                raise JobMismatchError(
                    f"{path} is not a readable batch manifest ({exc}). Remove it, choose "
                    "another output folder, or restart the job (--restart).") from exc
            return cls(folder, job, {})
        if old_job != job:
            if not restart:
                diff = sorted(k for k in set(old_job) | set(job) if old_job.get(k) != job.get(k))
                raise JobMismatchError(
                    f"The output folder {folder} holds a batch job with other parameters "
                    f"(differs in: {', '.join(diff)}). Resume it with the same model, inputs "
                    "and options, choose another output folder, or restart it (--restart "
                    "discards its blocks).")
            stale = cls(folder, old_job, old_blocks)
            stale.remove_outputs()
            return cls(folder, job, {})
        return cls(folder, job, old_blocks)

    def remove_outputs(self) -> None:
        """Delete the block files this manifest lists (used when restarting a job)."""
        for rec in self.blocks.values():
            p = os.path.join(self.folder, rec.get("file", ""))
            if rec.get("file") and os.path.isfile(p):
                os.remove(p)

    # --- state ---------------------------------------------------------------------------
    def finished(self, block_ids: Iterable[str], workers: int = 4) -> set[str]:
        """Ids among ``block_ids`` whose manifest record is ``done`` and whose file exists
        with the recorded sha256. Records that fail the check are set back to ``pending``
        with the reason (``missing``/``corrupt``) in ``redo_reason``."""
        candidates = [i for i in block_ids if self.blocks.get(i, {}).get("status") == "done"]

        def check(block_id: str) -> tuple[str, str | None]:
            rec = self.blocks[block_id]
            p = os.path.join(self.folder, rec["file"])
            if not os.path.isfile(p):
                return block_id, "missing"
            return block_id, None if sha256_file(p) == rec.get("sha256") else "corrupt"

        done = set()
        # hashlib releases the GIL on large buffers: threads hash files in parallel.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for block_id, problem in pool.map(check, candidates):
                if problem is None:
                    done.add(block_id)
                else:
                    self.blocks[block_id].update(status="pending", redo_reason=problem)
                    self._dirty = True
        return done

    def record(self, block_id: str, **fields: Any) -> None:
        """Update one block's record (status, file, sha256, seconds, error...)."""
        self.blocks.setdefault(block_id, {}).update(fields)
        self._dirty = True

    # --- saving --------------------------------------------------------------------------
    def save(self, force: bool = True) -> None:
        """Write the manifest through ``manifest.json.tmp`` + rename (atomic on POSIX).
        With ``force=False`` skip it if the last write was less than ``min_interval_s`` ago."""
        now = time.monotonic()
        if not force and (not self._dirty or now - self._last_save < self.min_interval_s):
            return
        doc = {"format": FORMAT, "version": VERSION,
               "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "job": self.job, "blocks": self.blocks}
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise OutputError(f"Cannot write the batch manifest {self.path}: {exc}") from exc
        self._last_save = now
        self._dirty = False

    def dates(self, block_ids: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
        """The union of the recorded ``dates`` of the ``done`` blocks among ``block_ids``:
        ``({modality: sorted ISO dates}, ids of done blocks without recorded dates)``. Blocks
        of manifests written before the field existed are in the second list and add no date.
        """
        union: dict[str, set[str]] = {}
        unknown = []
        for block_id in block_ids:
            rec = self.blocks.get(block_id, {})
            if rec.get("status") != "done":
                continue
            if not isinstance(rec.get("dates"), dict):
                unknown.append(block_id)
                continue
            for name, days in rec["dates"].items():
                union.setdefault(name, set()).update(days)
        return {name: sorted(days) for name, days in union.items()}, unknown

    def counts(self) -> dict[str, int]:
        """Number of blocks per status."""
        out: dict[str, int] = {}
        for rec in self.blocks.values():
            out[rec.get("status", "pending")] = out.get(rec.get("status", "pending"), 0) + 1
        return out
