"""maestro:batch_segment: a land-cover map of a large area, block by block on Dask.

A thin shell over ``python -m engine batch`` (engine/batch): same model, modality, date and
run-option parameters as maestro:segment, plus the area, block size and cluster. The job runs
in a child Python process (Dask's worker processes cannot be forked from QGIS itself, whose
executable is not Python) and reports JSON progress lines that become Processing feedback.
Cancel interrupts it; finished blocks stay recorded and a re-run resumes.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading

from qgis.core import (Qgis, QgsProcessingException, QgsProcessingOutputFile,
                       QgsProcessingOutputNumber, QgsProcessingOutputRasterLayer,
                       QgsProcessingParameterBoolean,
                       QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from ..styling import style_on_load
from .base import PLUGIN_DIR, engine_log
from .inference import FLOAT16_HELP, InferenceAlgorithm, _advanced, _with_help, extent_and_crs


class BatchSegmentAlgorithm(InferenceAlgorithm):
    TASK = "segmentation"
    AREA = "AREA"
    BLOCKS = "BLOCKS"
    BLOCK_SIZE = "BLOCK_SIZE"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    RETRIES = "RETRIES"
    MERGED_COG = "MERGED_COG"
    RESTART = "RESTART"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    MERGED = "MERGED"
    BLOCKS_TOTAL = "BLOCKS_TOTAL"
    BLOCKS_RUN = "BLOCKS_RUN"
    BLOCKS_SKIPPED = "BLOCKS_SKIPPED"
    BLOCKS_PER_HOUR = "BLOCKS_PER_HOUR"

    TASK_HELP = ("<p>Large-area semantic segmentation on Dask: splits the area into blocks "
                 "aligned to the reference raster's grid, runs one engine call per block as a "
                 "Dask task (a local cluster of worker processes, or an existing scheduler), "
                 "writes one COG per block and a VRT mosaic over them. Adjacent blocks agree "
                 "exactly on their border (the tile grid is global). The job is resumable: "
                 "manifest.json in the output folder records finished blocks with their "
                 "sha256; running it again skips them and redoes missing or corrupt ones. "
                 "Inputs may be files or VRT mosaics, one per date.</p>")
    OUTPUT_HELP = "Output folder: blocks/*.tif, manifest.json, mosaic.vrt (+ mosaic.tif)."
    # AREA is the inference algorithms' area-of-interest parameter, with the batch's meaning
    AREA_DESCRIPTION = "Area (empty = the reference rasters' extent)"
    AREA_HELP = ("Extent to map; from a layer's extent or drawn. Snapped out to the model's tile "
                 "grid and clipped to the reference raster.")
    # no BATCHES_IN_FLIGHT: each Dask worker runs one block at a time on its share of the cores
    SPEED_HELP = f"<p><b>FLOAT16</b> (advanced): {FLOAT16_HELP}</p>"

    def name(self):
        return "batch_segment"

    def displayName(self):
        return "Land-cover map of a large area (batch, Dask)"

    def initAlgorithm(self, config=None):
        super().initAlgorithm(config)
        self.removeParameter(self.OUTPUT)  # one raster -> a folder of blocks + mosaic
        self.removeParameter(self.BATCHES_IN_FLIGHT)  # engine default (auto) in every worker
        self.addParameter(_with_help(QgsProcessingParameterFeatureSource(
            self.BLOCKS, "Explicit blocks (one per feature's bounding box)",
            [Qgis.ProcessingSourceType.VectorPolygon], optional=True),
            "Instead of AREA: a polygon layer whose features' extents are the blocks."))
        self.addParameter(_with_help(QgsProcessingParameterNumber(
            self.BLOCK_SIZE, "Block size (reference pixels)",
            Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=1024, minValue=16, maxValue=65536),
            "Side of a block, rounded up to the model's tile size (1024 px at 10 m = 10 km)."))
        self.addParameter(_with_help(QgsProcessingParameterNumber(
            self.WORKERS, "Local worker processes (0 = one per core)",
            Qgis.ProcessingNumberParameterType.Integer, defaultValue=0, minValue=0, maxValue=512),
            "Size of the local Dask cluster; ignored with SCHEDULER."))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler address (empty = local cluster)", optional=True)),
            "tcp://host:8786 of a running `dask scheduler`; its workers must see the model, "
            "inputs and output folder under the same paths."))
        self.addParameter(_advanced(QgsProcessingParameterNumber(
            self.RETRIES, "Retries of a failed block", Qgis.ProcessingNumberParameterType.Integer,
            defaultValue=3, minValue=0, maxValue=100)))
        self.addParameter(QgsProcessingParameterBoolean(
            self.MERGED_COG, "Also write one merged COG (mosaic.tif)", defaultValue=False))
        self.addParameter(_with_help(_advanced(QgsProcessingParameterBoolean(
            self.RESTART, "Restart: discard a job with other parameters in the folder",
            defaultValue=False)),
            "Without it, a folder holding a job with another model, inputs or options is "
            "refused (so blocks of two jobs never mix)."))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, "Land-cover mosaic (VRT)"))
        self.addOutput(QgsProcessingOutputFile(self.MERGED, "Merged COG"))
        for key, title in ((self.BLOCKS_TOTAL, "Blocks in the area"),
                           (self.BLOCKS_RUN, "Blocks computed in this run"),
                           (self.BLOCKS_SKIPPED, "Blocks already finished (skipped)"),
                           (self.BLOCKS_PER_HOUR, "Throughput (blocks per hour)")):
            self.addOutput(QgsProcessingOutputNumber(key, title))

    def shortHelpString(self):
        return (super().shortHelpString()
                + "<p><b>AREA</b> or <b>BLOCKS</b>, <b>BLOCK_SIZE</b>, <b>WORKERS</b>, "
                  "<b>SCHEDULER</b>, <b>MERGED_COG</b>, <b>RESTART</b>: see each parameter. "
                  "docs/batch.md explains how to start a Dask cluster.</p>")

    # ------------------------------------------------------------------ running
    def batch_command(self, parameters, context, model_path, meta) -> list[str]:
        """The ``python -m engine batch`` arguments for these parameters."""
        matched = self.matched_inputs(meta, self.layer_inputs(parameters, context), parameters,
                                      context)
        folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        args = ["batch", "--model", model_path, "--output", folder, "--progress", "json",
                "--block-px", str(self.parameterAsInt(parameters, self.BLOCK_SIZE, context)),
                "--retries", str(self.parameterAsInt(parameters, self.RETRIES, context)),
                "--overlap", str(self.parameterAsInt(parameters, self.TILE_OVERLAP, context)),
                "--batch-size", str(self.parameterAsInt(parameters, self.BATCH_SIZE, context)),
                "--device", self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"]
        for modality, layers in matched.items():
            for layer in layers:
                args += ["--input", f"{modality}={layer.source}"]
                if layer.date:
                    args += ["--date", f"{modality}={layer.source}={layer.date.isoformat()}"]
        workers = self.parameterAsInt(parameters, self.WORKERS, context)
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        if scheduler:
            args += ["--scheduler", scheduler]
        elif workers:
            args += ["--workers", str(workers)]
        for flag, key in (("--merged-cog", self.MERGED_COG), ("--restart", self.RESTART),
                          ("--float16", self.FLOAT16)):
            if self.parameterAsBoolean(parameters, key, context):
                args.append(flag)
        return args + self.area_arguments(parameters, context)

    def area_arguments(self, parameters, context) -> list[str]:
        """``--area-bounds`` or ``--block-bounds`` (with ``--area-crs``) from AREA / BLOCKS."""
        has_area = self.has_area(parameters)
        source = self.parameterAsSource(parameters, self.BLOCKS, context)
        if has_area and source is not None:
            raise QgsProcessingException("Give either AREA or BLOCKS, not both.")
        if source is not None:
            args = []
            for feature in source.getFeatures():
                box = feature.geometry().boundingBox()
                if not box.isEmpty():
                    args += ["--block-bounds", *(repr(v) for v in (
                        box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()))]
            if not args:
                raise QgsProcessingException("BLOCKS: the layer has no feature with a geometry.")
            return args + ["--area-crs", _crs_text(source.sourceCrs())]
        if has_area:
            bounds, crs = extent_and_crs(self, parameters, self.AREA, context)
            args = ["--area-bounds", *(repr(v) for v in bounds)]
            return args + (["--area-crs", crs] if crs else [])
        return []

    def processAlgorithm(self, parameters, context, feedback):
        self.check_dependencies()
        try:
            import distributed  # noqa: F401 (the child process needs it too)
        except ImportError as exc:
            raise QgsProcessingException(
                "The batch runner needs the Python packages dask and distributed "
                f"({exc}); install them (pip install 'distributed==2026.8.0').") from exc
        model_path, meta = self.model_metadata(parameters, context)
        args = self.batch_command(parameters, context, model_path, meta)
        feedback.pushInfo(f"Model: {meta.name} ({meta.task}), {model_path}")
        done = run_engine_batch(args, feedback)
        style_on_load(context, done["vrt"], classes=meta.classes)
        return {self.OUTPUT: done["vrt"], self.MERGED: done.get("cog"),
                self.OUTPUT_FOLDER: os.path.dirname(done["vrt"]),
                self.BLOCKS_TOTAL: done["blocks_total"], self.BLOCKS_RUN: done["blocks_run"],
                self.BLOCKS_SKIPPED: done["blocks_skipped"],
                self.BLOCKS_PER_HOUR: done["blocks_per_hour"],
                self.PROVIDER: done.get("provider") or "",
                self.DATES_USED: json.dumps(done.get("dates") or {}, sort_keys=True)}


def _crs_text(crs) -> str:
    """``EPSG:xxxx`` when the CRS has an authority id, else its WKT (both read by rasterio)."""
    return crs.authid() if crs.authid() else crs.toWkt()


def _python() -> str:
    """An interpreter that runs the engine: this one when it is Python, else QGIS's own
    Python found beside it (inside QGIS ``sys.executable`` may be QGIS itself)."""
    if os.path.basename(sys.executable or "").lower().startswith("python"):
        return sys.executable
    from ..deps import find_qgis_python

    try:
        return find_qgis_python()
    except RuntimeError as exc:
        raise QgsProcessingException(f"Cannot start the batch runner: {exc}") from exc


def run_engine_batch(args: list[str], feedback) -> dict:
    """Run ``python -m engine <args>`` (with ``--progress json``), turning its JSON lines into
    feedback; returns the final ``done`` event. Cancel sends Ctrl-C (the job keeps what it
    finished) and raises."""
    log = engine_log(feedback)
    env = dict(os.environ)
    # The child sees the same packages as QGIS's Python (plugin folder, dependency folder).
    env["PYTHONPATH"] = os.pathsep.join([PLUGIN_DIR] + [p for p in sys.path if p])
    # Its own process group, so that Cancel can interrupt the runner and its workers.
    group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
             else {"start_new_session": True})
    proc = subprocess.Popen([_python(), "-m", "engine", *args], cwd=PLUGIN_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1, **group)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)],
                              daemon=True)
    reader.start()
    done, error, tail = None, None, []
    while True:
        if feedback.isCanceled():
            _interrupt(proc)
            raise QgsProcessingException(
                "Cancelled: the blocks finished so far are kept; run the algorithm again with "
                "the same parameters to resume.")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        line = line.rstrip()
        event = _event(line)
        if event is None:
            tail = (tail + [line])[-20:]
            feedback.pushDebugInfo(line)
        elif event["event"] == "progress":
            feedback.setProgress(100.0 * event["done"] / max(1, event["total"]))
            feedback.setProgressText(event["message"])
            feedback.pushInfo(event["message"])
        elif event["event"] == "log":
            log(event["message"])
        elif event["event"] == "error":
            error = event["message"]
        elif event["event"] == "done":
            done = event
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    if error:
        raise QgsProcessingException(error)
    if proc.returncode != 0 or done is None:
        # One line; the child's last lines (a traceback of a crash) go to the debug log.
        from .base import _write_traceback

        last = next((x.strip() for x in reversed(tail) if x.strip()), "no message")
        where = _write_traceback(RuntimeError("batch runner output:\n" + "\n".join(tail)))
        raise QgsProcessingException(
            f"The batch runner stopped (exit status {proc.returncode}): {last}"
            + (f" (its last lines are in {where})" if where else ""))
    return done


def _event(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C to the child's process group (the runner and its Dask workers), so the runner
    saves its manifest and closes its cluster; kill it if it does not stop."""
    try:
        if os.name == "nt":
            proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
