"""The web front-end end to end: ``microctlike web`` driven by headless Chromium through Playwright.

A real server on a free loopback port, a real browser (Debian's chromium, no download),
Mesa EGL off-screen rendering: load a simulated MDCT, place the standard VOIs, generate
with a tiny model (progress seen moving), drag a VOI with the mouse in the axial view and
see its metrics change, export the CSV and compare it with the library's own numbers,
upload a corrupt file and see the error while the server keeps answering, and check that
two tabs have their own sessions. The safety rules are also tested without a browser.

Screenshots land in ``$MICROCTLIKE_WEB_SHOTS`` when set (the README's come from there).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from MicroCTLikeLib.web import security

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
SLOW_S = 600_000  # Playwright timeouts (ms): a loaded 2-core CI machine renders slowly


# ---------------------------------------------------------------------- safety rules (no browser)
@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True),
                                           ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                           ("192.168.1.5", False), ("example.org", False), ("::", False)])
def test_loopback_detection(host, loopback):
    assert security.is_loopback_host(host) is loopback


def test_non_loopback_bind_needs_a_token():
    with pytest.raises(ValueError, match="--token"):
        security.check_bind("0.0.0.0", None)
    with pytest.raises(ValueError, match="16 characters"):
        security.check_bind("0.0.0.0", "short")
    security.check_bind("0.0.0.0", security.new_token())
    security.check_bind("127.0.0.1", None)


def test_non_loopback_bind_without_token_is_refused_by_the_command():
    """As a user runs it: exit status 1, one line saying what to do, nothing listening."""
    result = subprocess.run([sys.executable, "-m", "MicroCTLikeLib", "web", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, encoding="utf-8", timeout=120, cwd=REPO)
    assert result.returncode == 1
    assert "microctlike: error: --host 0.0.0.0 listens beyond this machine" in result.stderr
    assert "open http" not in result.stdout


def test_tokens_compare_exactly():
    token = security.new_token()
    assert len(token) >= 32 and token != security.new_token()
    assert security.token_matches(token, token)
    assert not security.token_matches(token[:-1], token)
    assert not security.token_matches(None, token)


def test_data_files_are_only_what_the_server_listed(tmp_path):
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "x.nrrd").write_bytes(b"")
    (data / "y.nii.gz").write_bytes(b"")
    (data / "notes.txt").write_text("not a volume")
    outside = tmp_path / "secret.nrrd"
    outside.write_bytes(b"")
    (data / "link.nrrd").symlink_to(outside)
    listed = security.list_data_files(data)
    assert listed == ["a/x.nrrd", "y.nii.gz"]
    assert security.resolve_data_file(data, "a/x.nrrd", listed) == (data / "a" / "x.nrrd").resolve()
    for name in ("../secret.nrrd", "/etc/passwd", "link.nrrd", "notes.txt", "a/../../secret.nrrd"):
        with pytest.raises(ValueError, match="not one of the files offered"):
            security.resolve_data_file(data, name, listed)


def test_upload_names_are_chosen_by_the_server(tmp_path):
    assert security.upload_target(tmp_path, "../../etc/ct.NII.GZ", 3) == tmp_path / "upload-3.nii.gz"
    assert security.upload_target(tmp_path, "C:\\x\\scan.nrrd", 1) == tmp_path / "upload-1.nrrd"
    for bad in ("run.sh", "scan.nrrd.exe", "", "noext"):
        with pytest.raises(security.UploadError, match="unsupported upload"):
            security.upload_target(tmp_path, bad, 1)


def test_dicom_zip_is_unpacked_flat_and_limited(tmp_path):
    import zipfile

    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../evil.dcm", b"a" * 100)
        z.writestr("/abs/b.dcm", b"b" * 100)
        z.writestr("dir/", b"")
        z.writestr("__MACOSX/._c", b"junk")
    out = security.extract_dicom_zip(archive, tmp_path / "unpacked", max_unpacked_bytes=1000)
    assert sorted(p.name for p in out.iterdir()) == ["00000.dcm", "00001.dcm"]
    assert not (tmp_path.parent / "evil.dcm").exists()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.dcm", b"\0" * 200_000)
    with pytest.raises(security.UploadError, match="unpacks to"):
        security.extract_dicom_zip(bomb, tmp_path / "bomb", max_unpacked_bytes=100_000)
    (tmp_path / "notzip.zip").write_bytes(b"PK nonsense")
    with pytest.raises(security.UploadError, match="cannot be read"):
        security.extract_dicom_zip(tmp_path / "notzip.zip", tmp_path / "nz", max_unpacked_bytes=100)


# ---------------------------------------------------------------------- end to end in Chromium
def _web_requirements():
    """Why the browser tests cannot run here, or None."""
    missing = []
    for module in ("trame_slicer", "playwright"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"python package {module} (pip install -e '.[dev,web,web-test]')")
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install chromium; .ci/run installs it)")
    return "; ".join(missing) or None


@pytest.fixture(scope="module")
def web_requirements():
    """`make test` runs these tests in the web venv with MICROCTLIKE_WEB_E2E=1: there a missing
    browser or package is a failure, never a silent skip; elsewhere (the main venv) they skip."""
    reason = _web_requirements()
    if os.environ.get("MICROCTLIKE_WEB_E2E") != "1":
        pytest.skip("browser tests run in the web venv: `make test` (or `make test-web`) sets MICROCTLIKE_WEB_E2E=1")
    if reason:
        pytest.fail(f"MICROCTLIKE_WEB_E2E=1 but the browser tests need {reason}")


@pytest.fixture(scope="module")
def web_data(tmp_path_factory, web_requirements):
    """A --data folder: a simulated small MDCT, its micro-CT, and a corrupt NRRD for the upload test."""
    from MicroCTLikeLib.simulate import simulate_specimen
    from MicroCTLikeLib.volume import write_volume

    specimen = simulate_specimen(11, preset="small")
    data = tmp_path_factory.mktemp("web_data")
    write_volume(specimen.mdct, data / "case_011" / "mdct.nrrd")
    write_volume(specimen.microct, data / "case_011" / "microct.nrrd")
    corrupt = tmp_path_factory.mktemp("web_upload") / "corrupt.nrrd"
    corrupt.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 10 10\nencoding: raw\n\n" + b"\x01" * 50)
    return {"dir": data, "mdct": data / "case_011" / "mdct.nrrd", "microct": data / "case_011" / "microct.nrrd",
            "corrupt": corrupt}


@pytest.fixture(scope="module")
def web_server(web_data, tiny_funit_checkpoint):
    """``microctlike web`` on a free loopback port, as a user starts it; yields the printed URL."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               VTK_DEFAULT_OPENGL_WINDOW="vtkEGLRenderWindow", PYTHONIOENCODING="utf-8", OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "MicroCTLikeLib", "web", "--port", "0", "--data", str(web_data["dir"]),
         "--model", str(tiny_funit_checkpoint), "--max-upload-mb", "20", "--idle-timeout", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=REPO)
    url = None
    deadline = time.time() + 300
    lines = []
    while time.time() < deadline:
        line = process.stdout.readline().decode("utf-8", errors="replace")
        if not line:
            break
        lines.append(line)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        pytest.fail("the server printed no URL:\n" + "".join(lines[-30:]))
    import threading

    log_path = Path(os.environ.get("MICROCTLIKE_WEB_LOG", str(web_data["dir"].parent / "server.log")))

    def keep_log():  # the server's output (session errors included) for a failing run to show
        with open(log_path, "ab") as sink:
            sink.write("".join(lines).encode("utf-8"))
            for line in iter(process.stdout.readline, b""):
                sink.write(line)
                sink.flush()

    threading.Thread(target=keep_log, daemon=True).start()
    yield url
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser(web_requirements):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _shot(page, name):
    folder = os.environ.get("MICROCTLIKE_WEB_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def _open_session(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 900}, accept_downloads=True)
    page.set_default_timeout(SLOW_S)
    page.goto(url, timeout=SLOW_S)
    page.wait_for_selector("#input-select")
    return page


def _choose(page, select_id, item_text):
    page.locator(f"#{select_id}").click(force=True)  # the id sits on the select's inner input
    page.locator(".v-overlay-container .v-list-item", has_text=item_text).first.click()


def _metrics(page):
    """The table as the page shows it: {(volume, voi): {column: text}}."""
    header = page.locator("#metrics tr").first.locator("th").all_inner_texts()
    table = {}
    for row in page.locator("#metrics tr:has(td)").all():
        cells = row.locator("td").all_inner_texts()
        entry = dict(zip(header, cells))
        table[(entry["volume"], entry["voi"])] = entry
    return table


def _wait_rows(page, count):
    page.wait_for_function(f"document.querySelectorAll('#metrics tr:has(td)').length === {count}")


def _axial_view(page):
    """The axial view's image element (the first remote-rendered view of the layout)."""
    return page.locator("img, canvas").filter(has=None).nth(0)


def _gold_centroid(png_bytes):
    """Centre (x, y) of the gold cylinder outline in a view screenshot (the VOI as a user sees it)."""
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB")).astype(int)
    gold = (rgb[..., 0] > 200) & (rgb[..., 1] > 150) & (rgb[..., 1] < 235) & (rgb[..., 2] < 90)
    ys, xs = np.nonzero(gold)
    if len(xs) < 20:
        return None
    return float(xs.mean()), float(ys.mean()), gold


def _drag_vector(png_bytes, gold, *, voi_diameter_mm=15.0, at_most_mm=1.5):
    """A drag (dx, dy in view pixels) that moves the VOI inside the volume, away from its nearest edge.

    The small simulated MDCT is barely wider than the 15 mm VOI: a drag of a few millimetres
    in the wrong direction puts the VOI partly outside the volume, and then the session
    (rightly) reports that it cannot measure there instead of changing the table. So look at
    the view: the volume is the non-black image, the VOI's outline the gold circle; go the
    way with the most room, half of it, at most ``at_most_mm``.
    """
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png_bytes)).convert("RGB")).astype(int)
    content = rgb.max(axis=2) > 25
    ys, xs = np.nonzero(gold)
    left, right, top, bottom = xs.min(), xs.max(), ys.min(), ys.max()
    row, col = int(round(ys.mean())), int(round(xs.mean()))

    def extent(line, start, step):  # last content pixel going from start in direction step
        i = start
        while 0 <= i + step < len(line) and line[i + step]:
            i += step
        return i

    room = {(-1, 0): left - extent(content[row], left, -1), (1, 0): extent(content[row], right, 1) - right,
            (0, -1): top - extent(content[:, col], top, -1), (0, 1): extent(content[:, col], bottom, 1) - bottom}
    direction, space = max(room.items(), key=lambda item: item[1])
    px_per_mm = (right - left) / voi_diameter_mm
    distance = min(space / 2, at_most_mm * px_per_mm)
    assert distance >= 0.3 * px_per_mm, f"no room to drag the VOI inside the volume: {room} px"
    return direction[0] * distance, direction[1] * distance


def _library_rows(volume_path, rows):
    """The library's own numbers for the CSV's VOIs (centre and axis as written, RAS -> LPS)."""
    from MicroCTLikeLib.measurement import measure_in_voi
    from MicroCTLikeLib.voi import CylinderVOI
    from MicroCTLikeLib.volume import read_volume

    volume = read_volume(volume_path)
    out = []
    for row in rows:
        voi = CylinderVOI(centre_lps_mm=(-float(row["centre_r_mm"]), -float(row["centre_a_mm"]), float(row["centre_s_mm"])),
                          axis_lps=(-float(row["axis_r"]), -float(row["axis_a"]), float(row["axis_s"])),
                          diameter_mm=float(row["diameter_mm"]), height_mm=float(row["height_mm"]))
        out.append(measure_in_voi(volume, voi))
    return out


def test_the_page_runs_the_workflow_in_chromium(browser, web_server, web_data):
    page = _open_session(browser, web_server)
    assert "token" not in page.url or page.url.startswith("http://127.0.0.1")
    _shot(page, "web_0_start.png")

    # load the simulated MDCT from the data folder
    _choose(page, "input-select", "case_011/mdct.nrrd")
    page.wait_for_function("document.querySelector('#input-name').textContent.includes('case_011/mdct.nrrd')")
    # and its micro-CT as the reference
    _choose(page, "reference-select", "case_011/microct.nrrd")
    page.wait_for_function("document.querySelector('#status').textContent.includes('micro-CT reference')")

    # place the standard VOIs: two VOIs x two volumes (MDCT, micro-CT)
    page.click("#place-vois")
    _wait_rows(page, 4)
    before = _metrics(page)
    assert {key[1] for key in before} == {"superior", "inferior"}
    assert {key[0] for key in before} == {"MDCT", "micro-CT"}
    for entry in before.values():
        assert 0 < float(entry["bv_tv"]) < 1 and float(entry["tb_th_mm"]) > 0
    time.sleep(2)
    _shot(page, "web_1_vois.png")

    # generate with the tiny model: progress moves, then the overlay and 6 rows
    page.click("#generate")
    seen = set()
    deadline = time.time() + 600
    while time.time() < deadline:
        value = page.locator("#progress").get_attribute("aria-valuenow")
        if value is not None:
            seen.add(float(value))
        if page.locator("#metrics tr:has(td)").count() == 6:
            break
        time.sleep(0.1)
    assert page.locator("#metrics tr:has(td)").count() == 6, page.locator("#error").inner_text()
    moving = sorted(v for v in seen if 0 < v < 100)
    assert len(moving) >= 2, f"progress values seen: {sorted(seen)}"
    time.sleep(2)
    _shot(page, "web_2_generated.png")

    # drag the superior VOI in the axial view with the mouse
    # trame-rca shows each remote-rendered view as an <img>; the axial view is the first in the layout
    view = page.locator("img.image-display-area").first
    box = view.bounding_box()
    png = view.screenshot()
    found = _gold_centroid(png)
    assert found is not None, "no VOI cylinder visible in the axial view"
    cx, cy, gold = found
    dx, dy = _drag_vector(png, gold)
    # press on the VOI's centre (its ROI's centre handle) and move it in small steps
    start = (box["x"] + cx, box["y"] + cy)
    page.mouse.move(*start)
    time.sleep(0.2)
    page.mouse.down()
    steps = 10
    for step in range(1, steps + 1):
        page.mouse.move(start[0] + dx * step / steps, start[1] + dy * step / steps)
        time.sleep(0.05)
    page.mouse.up()
    # the re-measure (3 volumes, 2 VOIs) takes tens of seconds on a loaded machine: wait for the table to change
    deadline = time.time() + 600
    while time.time() < deadline:
        after = _metrics(page)
        if len(after) == 6 and after[("MDCT", "superior")]["bv_tv"] != before[("MDCT", "superior")]["bv_tv"] \
                and page.locator("#status").inner_text().startswith("Measured"):
            break
        time.sleep(1.0)
    else:
        _shot(page, "web_3_drag_failed.png")
    after = _metrics(page)
    moved = [key for key in after if after[key]["bv_tv"] != before.get(key, after[key])["bv_tv"]]
    assert any(key[1] == "superior" for key in moved), (before, after)
    assert all(after[key] == before[key] for key in before if key[1] == "inferior")
    _shot(page, "web_3_dragged.png")

    # export the CSV and compare with the library's numbers for the same VOIs
    with page.expect_download() as download_info:
        page.click("#export-csv")
    text = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 6
    for name, path in (("MDCT", web_data["mdct"]), ("micro-CT", web_data["microct"])):
        subset = [r for r in rows if r["volume"] == name]
        for row, expected in zip(subset, _library_rows(path, subset)):
            assert float(row["bv_tv"]) == pytest.approx(expected.bv_tv, rel=1e-12)
            assert float(row["tb_th_mm"]) == pytest.approx(expected.tb_th_mm, rel=1e-12)
            assert float(row["tb_sp_mm"]) == pytest.approx(expected.tb_sp_mm, rel=1e-12)
    superior = [r for r in rows if r["voi"] == "superior" and r["volume"] == "MDCT"][0]
    assert float(superior["diameter_mm"]) == 15.0 and float(superior["height_mm"]) == 5.0

    # a corrupt upload: a clear message on the page, the session keeps serving
    page.set_input_files("#upload", str(web_data["corrupt"]))
    page.wait_for_function("document.querySelector('#error').textContent.includes('corrupt.nrrd')")
    message = page.locator("#error").inner_text()
    assert "failed" in message and "header" in message, message  # what is wrong with the file
    assert "upload-" not in message and "session-" not in message, message  # the server's folders stay private
    _shot(page, "web_4_bad_upload.png")
    session_root = re.match(r"(http://127\.0\.0\.1:\d+)/", page.url).group(1)
    assert page.request.get(f"{session_root}/healthz").ok
    assert len(_metrics(page)) == 6  # the loaded data is untouched
    page.close()


def test_each_tab_has_its_own_session_and_the_token_is_required(browser, web_server):
    first = _open_session(browser, web_server)
    second = _open_session(browser, web_server)
    assert first.url != second.url  # separate session processes
    _choose(first, "input-select", "case_011/mdct.nrrd")
    first.wait_for_function("document.querySelector('#input-name').textContent.includes('MDCT:')")
    assert "no MDCT loaded" in second.locator("#input-name").inner_text()
    # without the token neither the launcher nor a session answers
    launcher_root = web_server.split("/?")[0]
    session_root = re.match(r"(http://127\.0\.0\.1:\d+)/", first.url).group(1)
    for url in (launcher_root + "/", session_root + "/index.html", session_root + "/healthz"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url, timeout=30)
        assert error.value.code == 403
    first.close()
    second.close()
