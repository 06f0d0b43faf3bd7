"""``microctlike web``: the MicroCTLike panel in a browser (trame-slicer; needs the ``web`` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "serve the MicroCTLike panel in a browser (needs `pip install microctlike[web]`)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only); any other address "
                             "needs --token")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--token", default=None,
                        help="access token the page URL must carry (at least 16 characters, or 'auto' to generate "
                             "one); on loopback one is generated when not given")
    parser.add_argument("--data", type=Path, default=None, help="folder whose volume files the page offers")
    parser.add_argument("--model", type=Path, default=None,
                        help="generator checkpoint (default: the bundled one when installed)")
    parser.add_argument("--max-upload-mb", type=float, default=512.0, help="upload size limit in MB (default 512)")
    parser.add_argument("--max-sessions", type=int, default=8, help="at most this many tabs at once (default 8)")
    parser.add_argument("--idle-timeout", type=int, default=60,
                        help="seconds a session survives without its tab (default 60)")


def bundled_model():
    """The bundled generator's checkpoint when it is installed beside the module, else None."""
    root = Path(__file__).resolve().parents[2] / "MicroCTLike" / "Resources" / "Models"
    found = sorted(root.glob("*.pt")) if root.is_dir() else []
    return found[0] if found else None


def run(args) -> int:
    from ..errors import InvalidParameterError
    from ..web import security

    token = security.new_token() if args.token == "auto" else args.token
    security.check_bind(args.host, token)  # before importing anything heavy
    if args.data is not None and not args.data.is_dir():
        raise InvalidParameterError(f"--data {args.data}: not a folder")
    model = args.model if args.model is not None else bundled_model()
    if model is not None and not Path(model).is_file():
        raise InvalidParameterError(f"--model {model}: no such file")
    if args.max_upload_mb <= 0 or args.max_sessions < 1 or args.idle_timeout < 1:
        raise InvalidParameterError("--max-upload-mb, --max-sessions and --idle-timeout must be positive")
    try:
        import aiohttp  # noqa: F401
        import trame_slicer  # noqa: F401
    except ImportError as error:
        raise InvalidParameterError(f"the web front-end needs the web extra: pip install 'microctlike[web]' ({error})")
    from ..web.launcher import serve

    return serve(host=args.host, port=args.port, token=token, data_dir=args.data, model_path=model,
                 max_upload_bytes=int(args.max_upload_mb * 2**20), max_sessions=args.max_sessions,
                 idle_timeout_s=args.idle_timeout, print_url=lambda line: print(line, flush=True))
