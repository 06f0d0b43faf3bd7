"""The front server of ``microctlike web``: checks the token and gives each tab its own session.

A request for ``/`` (with the token) starts a session process (:mod:`.session`) on a free
port of the same host, with its own temporary folder, and redirects the tab there; the
token travels as an HttpOnly cookie. A session ends when its tab has been gone for
``--idle-timeout`` seconds (or when the launcher stops); its folder is removed then.
So two tabs never share a scene, a generation or an upload, and a session that fails
cannot take the others down.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import MicroCTLikeError
from . import security

READY_PREFIX = "MICROCTLIKE_SESSION_READY port="
SESSION_START_TIMEOUT_S = 180.0


class Session:
    """One session process and its folder."""

    def __init__(self, process: subprocess.Popen, folder: Path, port: int):
        self.process = process
        self.folder = folder
        self.port = port

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Launcher:
    """Starts, tracks and stops the session processes of one ``microctlike web`` server."""

    def __init__(self, *, host: str, token: str, data_dir: Optional[Path], model_path: Optional[Path],
                 max_upload_bytes: int, max_sessions: int = 8, idle_timeout_s: int = 60):
        self.host = host
        self.token = token
        self.data_dir = data_dir
        self.model_path = model_path
        self.max_upload_bytes = max_upload_bytes
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.root = Path(tempfile.mkdtemp(prefix="microctlike-web-"))
        self.sessions: List[Session] = []

    def _alive(self) -> List[Session]:
        alive = []
        for session in self.sessions:
            if session.process.poll() is None:
                alive.append(session)
            else:
                session.stop()  # ended by its idle timeout: remove its folder
        self.sessions = alive
        return alive

    async def start_session(self) -> Session:
        if len(self._alive()) >= self.max_sessions:
            raise MicroCTLikeError(f"{self.max_sessions} sessions are open; close a tab and try again")
        folder = Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
        command = [sys.executable, "-m", "MicroCTLikeLib.web.session", "--host", self.host, "--port", "0",
                   "--session-dir", str(folder), "--max-upload-bytes", str(self.max_upload_bytes),
                   "--idle-timeout", str(self.idle_timeout_s)]
        if self.token:
            command += ["--token", self.token]
        if self.data_dir is not None:
            command += ["--data", str(self.data_dir)]
        if self.model_path is not None:
            command += ["--model", str(self.model_path)]
        env = dict(os.environ)
        env.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        env["PYTHONIOENCODING"] = "utf-8"
        library_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (library_parent, env.get("PYTHONPATH", "")) if p)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, stdin=subprocess.DEVNULL, env=env)
        port = await asyncio.wait_for(self._read_port(process), timeout=SESSION_START_TIMEOUT_S)
        session = Session(process, folder, port)
        self.sessions.append(session)
        asyncio.get_event_loop().create_task(self._drain(process))
        return session

    @staticmethod
    async def _read_port(process: subprocess.Popen) -> int:
        loop = asyncio.get_event_loop()
        while True:
            line = await loop.run_in_executor(None, process.stdout.readline)
            if not line:
                raise MicroCTLikeError(f"the session process ended before it was ready (exit {process.wait()})")
            text = line.decode("utf-8", errors="replace").strip()
            if text.startswith(READY_PREFIX):
                return int(text[len(READY_PREFIX):])
            print(text, flush=True)

    @staticmethod
    async def _drain(process: subprocess.Popen) -> None:
        loop = asyncio.get_event_loop()
        while True:
            line = await loop.run_in_executor(None, process.stdout.readline)
            if not line:
                return
            print(line.decode("utf-8", errors="replace").rstrip(), flush=True)

    def stop_all(self) -> None:
        for session in self.sessions:
            session.stop()
        self.sessions = []
        shutil.rmtree(self.root, ignore_errors=True)


def make_app(launcher: Launcher):
    """The aiohttp application of the front server."""
    from aiohttp import web

    def authorised(request) -> bool:
        given = request.query.get("token") or request.cookies.get(security.TOKEN_COOKIE)
        return security.token_matches(given, launcher.token)

    async def index(request):
        if not authorised(request):
            return web.Response(status=403, text="MicroCTLike: the access token is missing or wrong.\n")
        try:
            session = await launcher.start_session()
        except (MicroCTLikeError, asyncio.TimeoutError) as error:
            return web.Response(status=503, text=f"MicroCTLike: cannot start a session: {error}\n")
        host = request.url.host or launcher.host
        location = f"{request.url.scheme}://{host}:{session.port}/index.html"
        response = web.HTTPFound(location)
        if launcher.token:
            response.set_cookie(security.TOKEN_COOKIE, launcher.token, httponly=True, samesite="Strict")
        return response

    async def health(request):
        return web.json_response({"ok": True, "sessions": len(launcher._alive())})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)

    async def cleanup(_app):
        launcher.stop_all()

    app.on_cleanup.append(cleanup)
    return app


def serve(*, host: str, port: int, token: Optional[str], data_dir: Optional[Path], model_path: Optional[Path],
          max_upload_bytes: int, max_sessions: int = 8, idle_timeout_s: int = 60, print_url=print) -> int:
    """Run the front server until interrupted (``microctlike web``)."""
    from aiohttp import web

    security.check_bind(host, token)
    token = token or security.new_token()
    launcher = Launcher(host=host, token=token, data_dir=data_dir, model_path=model_path,
                        max_upload_bytes=max_upload_bytes, max_sessions=max_sessions, idle_timeout_s=idle_timeout_s)
    app = make_app(launcher)

    async def run() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, host=host, port=port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        print_url(f"MicroCTLike web: open http://{shown}:{bound}/?token={token}")
        stop = asyncio.Event()
        try:  # `kill`, systemd and docker stop with SIGTERM: end the sessions too, as Ctrl-C does
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: no loop signal handlers
            pass
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        launcher.stop_all()
    return 0
