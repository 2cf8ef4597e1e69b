"""LeGend demo app: `python app.py [--host H] [--port P] [--share] [--engine NAME] [--checkpoints DIR]`, or
`python app.py --study DB [--host H] [--port P]` for a reader study on its own.

Thin entry point (also the Hugging Face Space's app_file): parse flags, build the UI, launch.
"""
from __future__ import annotations

try:  # ZeroGPU needs `spaces` imported before torch; absent locally, that is fine
    import spaces  # noqa: F401
except ImportError:
    spaces = None

import argparse
import logging
import os
import sys
import threading


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="LeGend demo: synthetic chest X-ray follow-ups (research use only)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="create a public gradio.live link")
    parser.add_argument("--study", metavar="DB", help="serve only the reader study in this SQLite file (readers and "
                        "the admin log in; no Generate tab)")
    parser.add_argument("--engine", help="engine name (default: the first available)")
    parser.add_argument("--checkpoints", metavar="DIR", help="checkpoints root (default: ./checkpoints or $LEGEND_CHECKPOINTS)")
    parser.add_argument("--no-preload", action="store_true", help="load the model on the first Generate click")
    return parser.parse_args(argv)


WARM_UP_ENGINES = ("embedded", "tiny-random")  # CPU-sized: a small follow-up at start-up costs a second or two


def preload(engine: str | None, warm: bool = False) -> None:
    """Load the engine once at start-up (ZeroGPU wants models placed before requests); with `warm` (locally, CPU-sized
    engines) also run one small follow-up so the first click is not slower than the next. Failures are shown later."""
    from legend_demo.engines.registry import default_engine_name, load_engine

    name = engine or default_engine_name()
    if name is None:
        return
    try:
        loaded = load_engine(name)
    except Exception as exc:  # noqa: BLE001 - reported to the user on Generate
        logging.getLogger("legend_demo.app").warning("engine %r not preloaded: %s", name, exc)
        return
    if not warm or loaded.name not in WARM_UP_ENGINES:
        return
    from legend_demo.ui.generation import warm_up

    try:  # the first click then costs what every click costs
        logging.getLogger("legend_demo.app").info("engine %r warmed up in %.1f s", name, warm_up(loaded))
    except Exception as exc:  # noqa: BLE001 - a real click reports its own failure
        logging.getLogger("legend_demo.app").warning("engine %r not warmed up: %s", name, exc)


def fail(message: str) -> None:
    """One clear line for the operator and exit code 2 (never a traceback)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def serve_study(args: argparse.Namespace) -> None:
    """`--study DB`: the reader study alone (login form, readers' cases, the admin summary after admin login)."""
    if args.share:
        fail("--share cannot be used with --study: put a reader study behind your own HTTPS reverse proxy")
    from legend_demo.ui.study_server import check_study_db, serve_study as serve

    try:
        check_study_db(args.study)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    serve(args.study, args.host, args.port)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from legend_demo.core import logs

    try:
        logs.configure()
    except ValueError as exc:  # a malformed LEGEND_LOG_LEVEL
        fail(str(exc))
    if args.study:
        serve_study(args)
        return
    from legend_demo.ui.app_ui import create_demo, launch_kwargs
    from legend_demo.ui.config import AppConfig

    try:
        config = AppConfig.from_env(checkpoints_root=args.checkpoints, engine=args.engine)
        config.apply()
    except ValueError as exc:  # a malformed LEGEND_* setting: one line for the operator
        fail(str(exc))
    demo = create_demo(config)
    on_space = bool(os.environ.get("SPACE_ID"))
    if on_space and not args.no_preload:  # ZeroGPU: models are placed before serving, not inside requests
        preload(config.engine)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
                **launch_kwargs(config))
    if not on_space and not args.no_preload:  # locally: load in the background once the page is served
        threading.Thread(target=preload, args=(config.engine, True), daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
