"""The web session's VOI drag without a browser: its scene, views and table, driven in-process.

The browser test (test_web.py) drags a VOI with Playwright; these tests check the same
path on the server side where `make test-web`'s venv has trame-slicer: a mouse drag in the
axial view, sent as the browser's events, moves the ROI; a moved VOI is re-measured and the
table's rows change to the library's numbers at the new place; a VOI dragged partly out of
the volume gives a clear error, the rows stay marked stale, and dragging it back measures again.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np
import pytest

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # off-screen, as the session runs
os.environ["TRAME_DISABLE_V2_WARNING"] = "1"
if os.environ.get("MICROCTLIKE_WEB_E2E") == "1":  # the web venv of `make test`: nothing may be missing there
    import trame_slicer  # noqa: F401
pytest.importorskip("trame_slicer", reason="the web front-end's venv (`make test-web`) has trame-slicer")
pytest.importorskip("slicer")

from MicroCTLikeLib.mrml import vois as mrml_vois  # noqa: E402
from MicroCTLikeLib.mrml.nodes import _numpy_to_vtk_4x4, _vtk_to_numpy_4x4  # noqa: E402
from MicroCTLikeLib.web import session as web_session  # noqa: E402

VIEW_W, VIEW_H = 700, 600


@pytest.fixture(scope="module")
def specimen():
    from MicroCTLikeLib.simulate import simulate_specimen

    return simulate_specimen(11, preset="small")


@pytest.fixture()
def app(specimen, tmp_path):
    """A session with the simulated MDCT loaded and the standard VOIs placed (as after 'Place standard VOIs')."""
    from trame.app import get_server

    from MicroCTLikeLib.volume import write_volume

    write_volume(specimen.mdct, tmp_path / "data" / "mdct.nrrd")
    server = get_server(f"web-session-test-{tmp_path.name}", client_type="vue3")
    session = web_session.SessionApp(server, data_dir=tmp_path / "data", model_path=None,
                                     session_dir=tmp_path / "session", token=None)
    session.on_choose_input("mdct.nrrd")
    assert session.state.error == ""
    session.place_vois()
    assert len(session.rows) == 2 and not session.state.metrics_stale
    yield session
    session.follower.close()


def _rows(app):
    return {(row["volume"], row["voi"]): dict(row) for row in app.state.metrics}


def _move(roi, offset_ras_mm):
    """Translate an ROI as its centre handle does (the object-to-node matrix moves)."""
    matrix = _vtk_to_numpy_4x4(roi.GetObjectToNodeMatrix())
    matrix[:3, 3] += np.asarray(offset_ras_mm, dtype=float)
    roi.GetObjectToNodeMatrix().DeepCopy(_numpy_to_vtk_4x4(matrix))
    roi.Modified()


def _run(coroutine):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def _settle(app, timeout_s=120.0):
    """Wait (with the event loop running, as in the server) until the debounced re-measure has run."""
    await asyncio.sleep(web_session.REMEASURE_DELAY_S + 0.1)
    deadline = time.time() + timeout_s
    while app._remeasure is not None and time.time() < deadline:
        await asyncio.sleep(0.05)
    assert app._remeasure is None, "the re-measure never ran"


def _superior(app):
    return mrml_vois.find_voi_roi("superior", scene=app.scene)


def test_a_moved_voi_is_remeasured_and_its_rows_equal_the_library(app, specimen):
    from MicroCTLikeLib.measurement import measure_in_voi

    before = _rows(app)
    roi = _superior(app)
    centre = np.array(roi.GetCenterWorld())

    async def drag():
        _move(roi, (-0.8, 0.6, 0.0))
        assert app.state.metrics_stale  # marked at once, before the debounced measurement
        await _settle(app)

    _run(drag())
    after = _rows(app)
    assert app.state.error == "" and not app.state.metrics_stale
    assert after[("MDCT", "superior")]["bv_tv"] != before[("MDCT", "superior")]["bv_tv"]
    assert after[("MDCT", "inferior")] == before[("MDCT", "inferior")]
    row = [r for r in app.rows if r["voi"] == "superior"][0]
    np.testing.assert_allclose((row["centre_r_mm"], row["centre_a_mm"], row["centre_s_mm"]),
                               centre + (-0.8, 0.6, 0.0), atol=1e-6)
    direct = measure_in_voi(specimen.mdct, mrml_vois.cylinder_from_roi(roi))
    assert row["bv_tv"] == pytest.approx(direct.bv_tv, rel=1e-12)
    assert row["tb_th_mm"] == pytest.approx(direct.tb_th_mm, rel=1e-12)
    assert row["tb_sp_mm"] == pytest.approx(direct.tb_sp_mm, rel=1e-12)
    assert app.export_csv().count("\n") == 3  # header + the two re-measured rows


def test_a_voi_dragged_out_of_the_volume_says_so_and_dragged_back_measures_again(app):
    before = _rows(app)
    roi = _superior(app)

    async def out_and_back():
        _move(roi, (-10.0, 0.0, 0.0))
        await _settle(app)
        assert "not entirely inside the volume" in app.state.error
        assert app.state.metrics_stale and _rows(app) == before  # the old rows stay, marked
        _move(roi, (10.0, 0.0, 0.0))
        await _settle(app)

    _run(out_and_back())
    assert app.state.error == "" and not app.state.metrics_stale
    after = _rows(app)
    for key in before:  # back at the same place: the same numbers (up to the float round trip of the centre)
        assert float(after[key]["bv_tv"]) == pytest.approx(float(before[key]["bv_tv"]), abs=2e-4)


def test_a_file_that_cannot_be_read_leaves_the_loaded_data_as_it_was(app, tmp_path):
    """What a corrupt upload does (the upload handler calls load_input): an error, nothing lost."""
    from MicroCTLikeLib.errors import MicroCTLikeError

    corrupt = tmp_path / "session" / "upload-1.nrrd"
    corrupt.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10\nencoding: raw\n\n" + b"\x01" * 50)
    before, rois, mdct = _rows(app), list(app.rois), app.nodes["MDCT"]
    with pytest.raises(MicroCTLikeError):
        app.load_input(corrupt, display_name="corrupt.nrrd")
    assert app.nodes["MDCT"] is mdct and mdct.GetScene() is app.scene
    assert app.rois == rois and all(roi.GetScene() is app.scene for roi in rois)
    assert _rows(app) == before and app.state.input_name == "mdct.nrrd"


def _slice_view(app, name="Red"):
    for view in app.slicer_app.view_manager.get_slice_views():
        if view._view_node.GetName() == name:
            return view
    raise AssertionError(f"no {name} slice view")


def test_a_mouse_drag_on_the_voi_centre_in_the_axial_view_moves_it(app):
    """The events the browser sends (trame-rca -> vtkRemoteInteractionAdapter) reach the ROI's widget."""
    import vtk
    from vtkmodules.vtkWebCore import vtkRemoteInteractionAdapter

    view = _slice_view(app)
    view.render_window().SetSize(VIEW_W, VIEW_H)
    view.interactor().UpdateSize(VIEW_W, VIEW_H)
    view.interactor().InvokeEvent(vtk.vtkCommand.WindowResizeEvent)
    view.render()
    roi = _superior(app)
    before = _rows(app)
    centre = np.array(roi.GetCenterWorld())
    ras_to_xy = vtk.vtkMatrix4x4()
    ras_to_xy.DeepCopy(view._view_node.GetXYToRAS())
    ras_to_xy.Invert()
    x0, y0 = ras_to_xy.MultiplyPoint((*centre, 1.0))[:2]
    assert 0 < x0 < VIEW_W and 0 < y0 < VIEW_H, "the VOI is not in the axial view"

    def send(kind, x, y, buttons):
        event = {"type": kind, "x": x, "y": y, "w": VIEW_W, "h": VIEW_H, "buttonLeft": buttons,
                 "action": "down" if buttons else "up", "ctrlKey": 0, "altKey": 0, "shiftKey": 0, "metaKey": 0}
        vtkRemoteInteractionAdapter.ProcessEvent(view.interactor(), json.dumps(event))
        view.render()

    dx, dy = 0.0, 30.0  # up in the view (anterior): the simulated volume has room there

    async def drag():
        send("MouseMove", x0, y0, 0)
        send("LeftButtonPress", x0, y0, 1)
        for step in range(1, 11):
            send("MouseMove", x0 + dx * step / 10, y0 + dy * step / 10, 1)
        send("LeftButtonRelease", x0 + dx, y0 + dy, 0)
        await _settle(app)

    _run(drag())
    moved = np.array(roi.GetCenterWorld()) - centre
    xy_to_ras = view._view_node.GetXYToRAS()
    expected = np.array(xy_to_ras.MultiplyPoint((x0 + dx, y0 + dy, 0.0, 1.0))[:3]) - centre
    np.testing.assert_allclose(moved, expected, atol=0.15)  # the centre followed the mouse (to a pixel or so)
    assert np.linalg.norm(moved) > 0.5
    assert app.state.error == "" and not app.state.metrics_stale
    assert _rows(app)[("MDCT", "superior")]["bv_tv"] != before[("MDCT", "superior")]["bv_tv"]


def test_upload_errors_keep_the_server_folders_private(tmp_path):
    upload = tmp_path / "session-x" / "upload-1.nrrd"
    message = f"{upload}: the NRRD header says dimension 3 but gives 2 sizes; see also {upload}"
    assert web_session._without_paths(message, (upload, None)) == (
        "the NRRD header says dimension 3 but gives 2 sizes; see also the uploaded file")
