"""The generation worker: the input node to a temporary NRRD, ``microctlike generate`` in a child process, the result back into a node."""

from __future__ import annotations

from typing import Optional

from .nodes import node_from_volume, volume_from_node


def start_generation_worker(input_node, *, model_path, device: str = "auto", region: str = "standard-vois",
                            python: Optional[str] = None, on_progress=None, on_log=None):
    """Write the input volume to a temporary NRRD and start ``microctlike generate`` in a child process.

    The child (PythonSlicer inside Slicer) prints PROGRESS lines; poll the returned
    :class:`~MicroCTLikeLib.mrml.process.ProcessRunner` from a timer, then call
    :func:`finish_generation_worker`. The input node is never modified.
    """
    import os
    import tempfile
    from pathlib import Path

    from .process import ProcessRunner, python_module_command
    from ..volume import write_volume

    work_dir = Path(tempfile.mkdtemp(prefix="microctlike-"))
    try:
        input_path = write_volume(volume_from_node(input_node), work_dir / "mdct.nrrd")
        output_path = work_dir / "microct_like.nrrd"
        command = python_module_command(
            "generate", str(input_path), "--out", str(output_path), "--model", str(model_path),
            "--device", device, "--region", region, "--progress-lines", "--json", python=python,
        )
        # PythonSlicer does not have the extension's module folder on its path: give it ours.
        env = dict(os.environ)
        library_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (library_parent, env.get("PYTHONPATH", "")) if p)
        env["PYTHONIOENCODING"] = "utf-8"
        runner = ProcessRunner(command, on_progress=on_progress, on_log=on_log, env=env)
    except BaseException:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    runner.work_dir = work_dir
    runner.output_path = output_path
    runner.input_name = input_node.GetName()
    return runner


def finish_generation_worker(runner, exit_code: int, *, output_node=None, scene=None):
    """Load the worker's output into ``output_node`` (or a new node) and remove the temporary files."""
    from ..volume import read_volume

    try:
        runner.check(exit_code)
        volume = read_volume(runner.output_path)
        return node_from_volume(volume, f"{runner.input_name} micro-CT-like", node=output_node, scene=scene)
    finally:
        cleanup_generation_worker(runner)


def cleanup_generation_worker(runner) -> None:
    """Remove the worker's temporary folder (after success, failure or cancel)."""
    import shutil

    work_dir = getattr(runner, "work_dir", None)
    if work_dir is not None:
        shutil.rmtree(work_dir, ignore_errors=True)


