"""The command line's progress bars: one bar per task, its final frame drawn once."""

import re
import time

from MicroCTLikeLib.progress import tqdm_progress


def _frames(text: str, total: int) -> list:
    return [frame for frame in re.split(r"[\r\n]", text) if f"{total}/{total}" in frame]


def test_final_frame_is_drawn_once_even_when_the_command_goes_on(capsys):
    with tqdm_progress("generating", unit="slice") as progress:
        for done in range(0, 7):
            progress(done, 6, "slices")
            time.sleep(0.11)  # slower than tqdm's refresh interval: every step draws a frame
        progress(6, 6, "slices")  # a late report of the finished task draws nothing
        time.sleep(1.1)  # the command measures on: the finished bar's elapsed time must not grow
    frames = _frames(capsys.readouterr().err, 6)
    # one frame, not one by update() with the smoothed rate, one by close() with the overall rate
    # and, before, another when the command ended
    assert len(frames) == 1, frames
    assert "00:00<" in frames[0]


def test_short_work_still_shows_its_final_frame_once(capsys):
    with tqdm_progress("measuring") as progress:
        progress(0, 3)
        progress(3, 3)
    assert len(_frames(capsys.readouterr().err, 3)) == 1


def test_a_new_total_starts_a_new_bar(capsys):
    with tqdm_progress("training") as progress:
        for done in range(6):
            progress(done, 5)
        for done in range(8):
            progress(done, 7)
    err = capsys.readouterr().err
    assert len(_frames(err, 5)) == 1 and len(_frames(err, 7)) == 1


def test_quiet_draws_nothing(capsys):
    with tqdm_progress("generating", disable=True) as progress:
        for done in range(4):
            progress(done, 3)
    assert capsys.readouterr().err == ""
