"""One browser session: a trame-slicer app with its own MRML scene, three slice views and the panel.

The panel mirrors the Slicer module's: input (a file from ``--data`` or an upload of NRRD /
NIfTI / MHA / a DICOM zip), an optional micro-CT reference, device, Generate with progress
and Cancel (a worker process, so the page stays live), the micro-CT-like overlay opacity,
Place standard VOIs (two fixed-size ROI boxes with their cylinders, draggable in the
views), the metrics table (re-measured after a drag), CSV/JSON export and a screenshot.

Every MRML operation goes through :mod:`MicroCTLikeLib.mrml` (shared with the Slicer
module). The launcher (:mod:`.launcher`) runs one of these per tab:
``python -m MicroCTLikeLib.web.session --port 0 --token T --session-dir D ...`` prints
``MICROCTLIKE_SESSION_READY port=N`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import CancelledError, MicroCTLikeError
from . import security

log = logging.getLogger("microctlike.web")

METRIC_COLUMNS = ["volume", "voi", "bv_tv", "tb_th_mm", "tb_th_sd_mm", "tb_sp_mm", "tb_sp_sd_mm",
                  "threshold", "threshold_method", "tb_sp_policy",
                  "centre_r_mm", "centre_a_mm", "centre_s_mm", "axis_r", "axis_a", "axis_s",
                  "diameter_mm", "height_mm"]
DEVICES = ["auto", "cpu", "cuda"]
REMEASURE_DELAY_S = 0.4
ROLE_MDCT, ROLE_LIKE, ROLE_MICRO = "MDCT", "micro-CT-like", "micro-CT"


def _display_number(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return str(value)


class SessionApp:
    """The state and actions of one session (trame server, MRML scene, worker)."""

    def __init__(self, server, *, data_dir: Optional[Path], model_path: Optional[Path], session_dir: Path,
                 token: Optional[str], max_upload_bytes: int = security.DEFAULT_MAX_UPLOAD_BYTES):
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

        self.server = server
        self.state = server.state
        self.ctrl = server.controller
        self.data_dir = Path(data_dir).resolve() if data_dir else None
        self.model_path = Path(model_path) if model_path else None
        self.session_dir = Path(session_dir)
        self.session_dir.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.max_upload_bytes = int(max_upload_bytes)
        self._uploads = 0
        self.nodes: Dict[str, Any] = {}      # role -> volume node
        self.rois: List[Any] = []
        self.cylinders: Dict[str, Any] = {}  # ROI node ID -> cylinder model node
        self.rows: List[Dict[str, Any]] = []
        self.runner = None
        from ..mrml.vois import VOIFollower

        self.follower = VOIFollower(on_moved=self._on_voi_moved)
        self._remeasure = None

        server.enable_module(trame_slicer_module)
        self.slicer_app = SlicerApp()
        self.scene = self.slicer_app.scene
        register_rca_factories(self.slicer_app.view_manager, server)
        self.layout_manager = LayoutManager(self.scene, self.slicer_app.view_manager, server)
        self.layout_manager.register_layout_dict({
            "MicroCTLike": Layout(LayoutDirection.Horizontal, [
                ViewLayoutDefinition.axial_view(),
                Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.coronal_view(),
                                                  ViewLayoutDefinition.sagittal_view()]),
            ]),
        })
        self.layout_manager.set_layout("MicroCTLike")

        self.data_files = security.list_data_files(self.data_dir)
        self.state.update({
            "trame__title": "MicroCTLike",
            "data_files": self.data_files, "input_file": None, "reference_file": None,
            "input_name": "", "reference_name": "", "device": "auto", "devices": DEVICES,
            "has_model": self.model_path is not None,
            "model_name": self.model_path.name if self.model_path else "no --model given",
            "generating": False, "progress": 0, "progress_text": "", "has_output": False, "opacity": 0.5,
            "has_vois": False, "metrics": [], "metrics_stale": False, "metric_columns": METRIC_COLUMNS[:7],
            "status": "Choose an MDCT volume to start.", "error": "", "busy": False,
            "max_upload_mb": round(self.max_upload_bytes / 2**20, 1),
        })
        self.state.change("opacity")(self._on_opacity)
        self.ctrl.on_server_bind.add(self._bind_routes)
        self._build_ui()

    # ------------------------------------------------------------------ HTTP: token and uploads
    def _bind_routes(self, wslink_server) -> None:
        from aiohttp import web

        token = self.token

        @web.middleware
        async def require_token(request, handler):
            given = request.query.get("token") or request.cookies.get(security.TOKEN_COOKIE)
            if not security.token_matches(given, token):
                return web.Response(status=403, text="MicroCTLike: the access token is missing or wrong.\n")
            response = await handler(request)
            if token and request.query.get("token") and not isinstance(response, web.WebSocketResponse) \
                    and not response.prepared:
                response.set_cookie(security.TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response

        app = wslink_server.app
        app.middlewares.append(require_token)
        app.router.add_post("/upload", self._handle_upload)
        app.router.add_get("/healthz", lambda request: web.Response(text="ok\n"))

    async def _handle_upload(self, request):
        from aiohttp import web

        name = request.query.get("name", "")
        target = path = None
        try:
            declared = request.content_length
            if declared is not None and declared > self.max_upload_bytes:
                raise security.UploadError(
                    f"{name!r} is {declared / 2**20:.1f} MB; uploads are limited to {self.max_upload_bytes / 2**20:.1f} MB")
            self._uploads += 1
            target = security.upload_target(self.session_dir, name, self._uploads)
            written = 0
            with open(target, "wb") as sink:
                async for chunk in request.content.iter_chunked(1 << 20):
                    written += len(chunk)
                    if written > self.max_upload_bytes:
                        raise security.UploadError(
                            f"{name!r} is larger than the upload limit of {self.max_upload_bytes / 2**20:.1f} MB")
                    sink.write(chunk)
            path = target
            if target.suffix == ".zip":
                path = security.extract_dicom_zip(target, target.with_suffix(""),
                                                  max_unpacked_bytes=security.ZIP_UNPACK_FACTOR * self.max_upload_bytes)
            self.load_input(path, display_name=Path(name).name)
            return web.json_response({"ok": True})
        except (MicroCTLikeError, OSError) as error:
            reason = _without_paths(str(error), (path, target))
            self._report_error(f"Upload of {Path(name).name!r} failed: {reason}")
            return web.json_response({"ok": False, "error": reason}, status=400)
        except Exception as error:  # noqa: BLE001 - as _guard: the page says so, the session keeps serving
            log.exception("unexpected error in an upload")
            reason = _without_paths(str(error), (path, target))
            self._report_error(f"Upload of {Path(name).name!r} failed: unexpected {type(error).__name__}: {reason}")
            return web.json_response({"ok": False, "error": reason}, status=500)

    # ------------------------------------------------------------------ messages
    def _report_error(self, message: str) -> None:
        log.warning("%s", message)
        with self.state:
            self.state.error = message
            self.state.busy = False

    def _set_status(self, message: str) -> None:
        with self.state:
            self.state.status = message
            self.state.error = ""

    def _guard(self, action, *args):
        """Run an action; our errors become the page's error message, the server keeps serving."""
        try:
            return action(*args)
        except MicroCTLikeError as error:
            self._report_error(str(error))
        except Exception as error:  # noqa: BLE001 - an unexpected error must not end the session
            log.exception("unexpected error")
            self._report_error(f"Unexpected error: {type(error).__name__}: {error}")
        return None

    # ------------------------------------------------------------------ volumes
    def _show(self) -> None:
        mdct, like = self.nodes.get(ROLE_MDCT), self.nodes.get(ROLE_LIKE)
        display = self.slicer_app.display_manager
        display.show_volume_in_slice_background(mdct)
        display.show_volume_in_slice_foreground(like)
        for view in self.slicer_app.view_manager.get_slice_views():
            view.set_foreground_opacity(float(self.state.opacity) if like is not None else 0.0)

    def _read_into_node(self, path: Path, role: str, display_name: str, volume=None):
        from ..mrml import nodes as mrml_nodes
        from ..volume import read_volume

        volume = read_volume(path) if volume is None else volume
        node = mrml_nodes.node_from_volume(volume, f"{display_name} ({role})", node=self.nodes.get(role),
                                             scene=self.scene)
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.AutoWindowLevelOn()
        self.nodes[role] = node
        return node

    def load_input(self, path: Path, *, display_name: str) -> None:
        """Load an MDCT volume (replacing the session's data) and show it in the three views.

        The file is read first: one that cannot be read (a corrupt upload) is an error and
        leaves the loaded volumes, VOIs and table as they were.
        """
        from ..volume import read_volume

        if self.runner is not None:
            raise MicroCTLikeError("a generation is running: cancel it before loading another volume")
        with self.state:
            self.state.busy = True
        volume = read_volume(path)
        self._clear_results(keep_reference=True)
        for role in (ROLE_MDCT, ROLE_LIKE):
            node = self.nodes.pop(role, None)
            if node is not None:
                self.scene.RemoveNode(node)
        self._read_into_node(path, ROLE_MDCT, Path(display_name).name.split(".")[0] or "input", volume=volume)
        self._show()
        self.slicer_app.display_manager.reset_views()
        with self.state:
            self.state.input_name = display_name
            self.state.has_output = False
            self.state.busy = False
            self.state.status = f"Loaded {display_name}. Place the standard VOIs or generate."
            self.state.error = ""

    def load_reference(self, path: Path, *, display_name: str) -> None:
        """Load a micro-CT of the same specimen; it is measured in the VOIs (not shown)."""
        self._read_into_node(path, ROLE_MICRO, Path(display_name).name.split(".")[0] or "reference")
        with self.state:
            self.state.reference_name = display_name
        self._set_status(f"Loaded micro-CT reference {display_name}.")
        if self.rois:
            self.measure()

    def on_choose_input(self, name=None) -> None:
        name = name if name is not None else self.state.input_file
        self._guard(lambda: self.load_input(security.resolve_data_file(self.data_dir, name, self.data_files),
                                            display_name=name))

    def on_choose_reference(self, name=None) -> None:
        name = name if name is not None else self.state.reference_file
        self._guard(lambda: self.load_reference(security.resolve_data_file(self.data_dir, name, self.data_files),
                                                display_name=name))

    def _on_opacity(self, opacity, **_) -> None:
        if self.nodes.get(ROLE_LIKE) is None:
            return
        for view in self.slicer_app.view_manager.get_slice_views():
            view.set_foreground_opacity(float(opacity))

    # ------------------------------------------------------------------ VOIs and metrics
    def _clear_results(self, keep_reference: bool = False) -> None:
        from ..mrml.vois import cylinder_model_of

        self.follower.close()
        for roi in self.rois:
            model = cylinder_model_of(roi)
            if model is not None:
                self.scene.RemoveNode(model)
            self.scene.RemoveNode(roi)
        self.rois = []
        self.rows = []
        if not keep_reference:
            node = self.nodes.pop(ROLE_MICRO, None)
            if node is not None:
                self.scene.RemoveNode(node)
        if self._remeasure is not None:
            self._remeasure.cancel()
            self._remeasure = None
        with self.state:
            self.state.has_vois = False
            self.state.metrics = []
            self.state.metrics_stale = False

    def place_vois(self) -> None:
        """Find the vertebral body in the MDCT and place the two standard VOIs, then measure."""
        from ..mrml import vois as mrml_vois

        mdct = self.nodes.get(ROLE_MDCT)
        if mdct is None:
            raise MicroCTLikeError("load an MDCT volume first")
        self._clear_results(keep_reference=True)
        self.rois = list(mrml_vois.place_standard_vois(mdct, scene=self.scene))
        self.follower.observe(self.rois)
        self._jump_to(self.rois[0])
        with self.state:
            self.state.has_vois = True
        self.measure()

    def _jump_to(self, roi) -> None:
        """Centre the three views on a VOI (as Slicer's "jump to" does)."""
        from slicer import vtkMRMLSliceNode

        from ..mrml import vois as mrml_vois

        lps = mrml_vois.cylinder_from_roi(roi).centre_lps_mm
        vtkMRMLSliceNode.JumpAllSlices(self.scene, -lps[0], -lps[1], lps[2], vtkMRMLSliceNode.CenteredJumpSlice)

    def _on_voi_moved(self, _roi) -> None:
        """A VOI moves (its cylinder already follows): the table is stale; re-measure once it is still a moment.

        As in the Slicer module: the rows stay, marked as describing the VOIs' previous place,
        until a measurement at the new place replaces them (a VOI dragged partly out of the
        volume cannot be measured: the error says so and the table stays marked).
        """
        if self._remeasure is not None:
            self._remeasure.cancel()
            self._remeasure = None
        if self.rows and not self.state.metrics_stale:
            with self.state:
                self.state.metrics_stale = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a script or a test driving the scene): measure now
            self._guard(self.measure)
            return
        self._remeasure = loop.call_later(REMEASURE_DELAY_S, self._remeasure_now)

    def _remeasure_now(self) -> None:
        self._remeasure = None
        with self.state:
            self.state.status = "VOI moved: measuring..."
        # let the page see the status before the measurement holds the event loop
        self._remeasure = asyncio.get_running_loop().call_later(0.05, self._measure_after_move)

    def _measure_after_move(self) -> None:
        self._remeasure = None
        self._guard(self.measure)

    def measure(self) -> None:
        """BV/TV, Tb.Th, Tb.Sp of every loaded volume in both VOIs, into the table."""
        from ..mrml import tables as mrml_tables
        from ..mrml import vois as mrml_vois

        volumes = [self.nodes[r] for r in (ROLE_MDCT, ROLE_LIKE, ROLE_MICRO) if r in self.nodes]
        rows = mrml_tables.measure_volumes_in_rois(volumes, self.rois)
        roles = {node.GetName(): role for role, node in self.nodes.items()}
        # rows name a VOI by its role (superior / inferior), else by its ROI's name
        geometry = {(roi.GetAttribute(mrml_vois.ROLE_ATTRIBUTE) or roi.GetName()): mrml_vois.cylinder_from_roi(roi)
                    for roi in self.rois}
        for row in rows:
            row["volume"] = roles.get(row["volume"], row["volume"])
            voi = geometry[row["voi"]]
            centre_ras = (-voi.centre_lps_mm[0], -voi.centre_lps_mm[1], voi.centre_lps_mm[2])
            axis_ras = (-voi.axis_lps[0], -voi.axis_lps[1], voi.axis_lps[2])
            row["voi"] = row["voi"].rsplit(" ", 1)[-1]
            row.update({"centre_r_mm": centre_ras[0], "centre_a_mm": centre_ras[1], "centre_s_mm": centre_ras[2],
                        "axis_r": axis_ras[0], "axis_a": axis_ras[1], "axis_s": axis_ras[2],
                        "diameter_mm": voi.diameter_mm, "height_mm": voi.height_mm})
        self.rows = rows
        with self.state:
            self.state.metrics = [{key: _display_number(row.get(key, "")) for key in METRIC_COLUMNS} for row in rows]
            self.state.metrics_stale = False
            self.state.status = f"Measured {len(volumes)} volume(s) in {len(self.rois)} VOI(s)."
            self.state.error = ""

    # ------------------------------------------------------------------ export
    def export_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in METRIC_COLUMNS})
        return buffer.getvalue()

    def export_json(self) -> str:
        return json.dumps({"input": self.state.input_name, "reference": self.state.reference_name,
                           "rows": self.rows}, indent=2, default=float)

    def screenshot_png(self):
        """The three views side by side as one PNG (as an attachment for the browser to save)."""
        import numpy as np
        from PIL import Image
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        images = []
        for view in self.slicer_app.view_manager.get_slice_views():
            window = view.render_window()
            view.render()
            grab = vtkWindowToImageFilter()
            grab.SetInput(window)
            grab.ReadFrontBufferOff()
            grab.Update()
            data = grab.GetOutput()
            width, height, _ = data.GetDimensions()
            pixels = vtk_to_numpy(data.GetPointData().GetScalars()).reshape(height, width, -1)[::-1, :, :3]
            images.append(pixels)
        height = max(i.shape[0] for i in images)
        padded = [np.pad(i, ((0, height - i.shape[0]), (0, 2), (0, 0))) for i in images]
        buffer = io.BytesIO()
        Image.fromarray(np.concatenate(padded, axis=1).astype(np.uint8)).save(buffer, format="PNG")
        return self.server.protocol.addAttachment(buffer.getvalue())

    # ------------------------------------------------------------------ generation
    def start_generation(self) -> None:
        from ..mrml import worker as mrml_worker

        if self.runner is not None:
            return
        mdct = self.nodes.get(ROLE_MDCT)
        if mdct is None:
            raise MicroCTLikeError("load an MDCT volume first")
        if self.model_path is None:
            raise MicroCTLikeError("no generator: start the server with --model CHECKPOINT")

        def on_progress(done, total, message):
            with self.state:
                self.state.progress = round(100.0 * done / max(total, 1), 1)
                self.state.progress_text = f"{done}/{total} {message}".strip()

        self.runner = mrml_worker.start_generation_worker(
            mdct, model_path=self.model_path, device=self.state.device,
            region=mrml_worker.generation_region(self.rois) if self.rois else "standard-vois",
            on_progress=on_progress)
        with self.state:
            self.state.generating = True
            self.state.progress = 0
            self.state.progress_text = "starting the worker..."
            self.state.status = f"Generating on {self.state.device} (the page stays usable)."
            self.state.error = ""
        asyncio.get_event_loop().create_task(self._watch_worker(self.runner))

    def cancel_generation(self) -> None:
        if self.runner is not None:
            self.runner.cancel()

    async def _watch_worker(self, runner) -> None:
        from ..mrml import worker as mrml_worker

        while True:
            code = runner.poll()
            if code is not None:
                break
            await asyncio.sleep(0.25)
        self.runner = None
        try:
            node = mrml_worker.finish_generation_worker(runner, code, output_node=self.nodes.get(ROLE_LIKE),
                                                            scene=self.scene)
            if node.GetDisplayNode() is None:
                node.CreateDefaultDisplayNodes()
            node.GetDisplayNode().AutoWindowLevelOn()
            self.nodes[ROLE_LIKE] = node
            self._show()
            with self.state:
                self.state.generating = False
                self.state.has_output = True
                self.state.progress = 100
                self.state.status = "Generated the micro-CT-like volume (overlay in the views)."
            if self.rois:
                self._guard(self.measure)
        except CancelledError:
            with self.state:
                self.state.generating = False
                self.state.progress = 0
                self.state.progress_text = ""
                self.state.status = "Generation cancelled; nothing was written."
        except Exception as error:  # noqa: BLE001 - a failed worker must not end the session
            with self.state:
                self.state.generating = False
            self._report_error(f"Generation failed: {error}")

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        from trame.ui.vuetify3 import SinglePageWithDrawerLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v3

        ctrl = self.ctrl
        trigger_load = ctrl.trigger_name(self.on_choose_input)
        trigger_reference = ctrl.trigger_name(self.on_choose_reference)
        upload_failed = ctrl.trigger_name(lambda message: self._report_error(f"Upload failed: {message}"))
        csv_trigger = ctrl.trigger_name(self.export_csv)
        json_trigger = ctrl.trigger_name(self.export_json)
        shot_trigger = ctrl.trigger_name(self.screenshot_png)
        # A function expression: Vue calls it with the change event (an inline statement would not get it).
        # Vue templates see only a few globals (fetch and window are not among them): trame's
        # utils.get('window') is the page's window.
        upload_js = (
            "(event) => { const f = event.target.files[0]; if (!f) return;"
            " utils.get('window').fetch('upload?name=' + encodeURIComponent(f.name), {method: 'POST', body: f})"
            f" .catch(e => trigger('{upload_failed}', [String(e)]));"
            " event.target.value = ''; }"
        )

        with SinglePageWithDrawerLayout(self.server, full_height=True) as layout:
            layout.title.set_text("MicroCTLike")
            layout.root.theme = "dark"
            with layout.toolbar:
                v3.VSpacer()
                html.Div("{{ status }}", id="status", classes="text-body-2 mr-4")
            with layout.drawer as drawer:
                drawer.width = 380
                with html.Div(classes="pa-3 d-flex flex-column", style="gap: 8px"):
                    # first in the panel: an error must be seen without scrolling (the table pushes the end away)
                    v3.VAlert("{{ error }}", type="error", id="error", v_show="error", density="compact",
                              closable=False)
                    html.Div("Input", classes="text-subtitle-2")
                    v3.VSelect(label="MDCT from the data folder", v_model=("input_file", None), items=("data_files",),
                               id="input-select", density="compact", hide_details=True,
                               update_modelValue=f"trigger('{trigger_load}', [$event])", disabled=("generating",))
                    html.Div(f"or upload NRRD / NIfTI / MHA / DICOM zip (at most {{{{ max_upload_mb }}}} MB):",
                             classes="text-caption")
                    html.Input(type="file", id="upload", accept=",".join(security.UPLOAD_SUFFIXES),
                               change=upload_js, disabled=("generating",))
                    html.Div("{{ input_name ? 'MDCT: ' + input_name : 'no MDCT loaded' }}", id="input-name",
                             classes="text-caption")
                    v3.VSelect(label="micro-CT reference (optional)", v_model=("reference_file", None),
                               items=("data_files",), id="reference-select", density="compact", hide_details=True,
                               update_modelValue=f"trigger('{trigger_reference}', [$event])", disabled=("!input_name",))
                    v3.VDivider()
                    html.Div("Generate ({{ model_name }})", classes="text-subtitle-2")
                    v3.VSelect(label="Device", v_model=("device", "auto"), items=("devices",), density="compact",
                               hide_details=True, id="device-select", disabled=("generating",))
                    v3.VBtn("{{ generating ? 'Cancel' : 'Generate' }}", id="generate",
                            color=("generating ? 'warning' : 'primary'",),
                            disabled=("!input_name || !has_model",),
                            click=(self._on_generate_button,))
                    v3.VProgressLinear(model_value=("progress", 0), height=18, id="progress", color="primary",
                                       v_show="generating || progress > 0")
                    html.Div("{{ progress_text }}", id="progress-text", classes="text-caption",
                             v_show="generating")
                    v3.VSlider(label="Overlay opacity", v_model=("opacity", 0.5), min=0, max=1, step=0.05,
                               density="compact", hide_details=True, disabled=("!has_output",), id="opacity")
                    v3.VDivider()
                    html.Div("VOIs and metrics", classes="text-subtitle-2")
                    v3.VBtn("Place standard VOIs", id="place-vois", disabled=("!input_name || generating",),
                            click=(lambda: self._guard(self.place_vois),))
                    with html.Table(id="metrics", classes="text-caption", style="width: 100%",
                                    v_show="metrics.length"):
                        with html.Tr():
                            html.Th("{{ column }}", v_for="column in metric_columns", key="column")
                        with html.Tr(v_for="row in metrics", key="row.volume + row.voi",
                                     **{"data-volume": ("row.volume",), "data-voi": ("row.voi",)}):
                            html.Td("{{ row[column] }}", v_for="column in metric_columns", key="column")
                    html.Div("A VOI moved: these numbers are for its previous place until it is measured again.",
                             id="metrics-stale", classes="text-caption text-warning",
                             v_show="metrics.length && metrics_stale")
                    with html.Div(classes="d-flex", style="gap: 6px"):
                        v3.VBtn("CSV", id="export-csv", size="small", disabled=("!metrics.length",),
                                click=f"utils.download('microctlike_metrics.csv', trigger('{csv_trigger}'), 'text/csv')")
                        v3.VBtn("JSON", id="export-json", size="small", disabled=("!metrics.length",),
                                click=f"utils.download('microctlike_metrics.json', trigger('{json_trigger}'),"
                                      " 'application/json')")
                        v3.VBtn("Screenshot", id="screenshot", size="small", disabled=("!input_name",),
                                click=f"utils.download('microctlike_views.png', trigger('{shot_trigger}'),"
                                      " 'image/png')")
            with layout.content:
                with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px)"):
                    self.layout_manager.initialize_layout_grid(layout)
        self.ui = layout

    def _on_generate_button(self) -> None:
        if self.runner is not None:
            self.cancel_generation()
        else:
            self._guard(self.start_generation)


def _without_paths(message: str, paths) -> str:
    """An upload's error without the server's own file names (the session folder stays private;
    the page already names the uploaded file)."""
    for path in paths:
        if path is not None:
            message = message.replace(f"{path}: ", "").replace(str(path), "the uploaded file")
    return message


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m MicroCTLikeLib.web.session",
                                     description="one MicroCTLike web session (started by `microctlike web`)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--session-dir", type=Path, required=True)
    parser.add_argument("--max-upload-bytes", type=int, default=security.DEFAULT_MAX_UPLOAD_BYTES)
    parser.add_argument("--idle-timeout", type=int, default=60,
                        help="seconds without a connected tab before the session ends")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    os.environ["TRAME_DISABLE_V2_WARNING"] = "1"
    from trame.app import get_server

    server = get_server(None, client_type="vue3")
    SessionApp(server, data_dir=args.data, model_path=args.model, session_dir=args.session_dir, token=args.token,
               max_upload_bytes=args.max_upload_bytes)

    @server.controller.add("on_server_ready")
    def _ready(**_):
        print(f"MICROCTLIKE_SESSION_READY port={server.port}", flush=True)

    server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=False,
                 timeout=args.idle_timeout, disable_logging=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
