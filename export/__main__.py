"""``python -m export``: detectors and depth models -> ONNX + sidecar, checked against torch; the model store's
files (``models``) and the public checkpoints (``weights``) fetched on request.

Exit codes: 0 ok, 1 export or parity failure (or a missing package), 2 usage error.
"""

from __future__ import annotations

import logging
import sys

from depthstream.errors import guarded_main

from .cli import build_parser, run_depth, run_detector


def run_models(args) -> list[str]:
    from .fetch import fetch_models, list_models

    if args.list:
        return list_models()
    return fetch_models(args.group, only=args.only, timeout_s=args.timeout)


def run_weights(args) -> list[str]:
    from .fetch import fetch_and_export, list_entries

    if args.list:
        return list_entries(args.manifest)
    return fetch_and_export(args.manifest, only=args.only, directory=args.dir, timeout_s=args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    run = {"detector": run_detector, "depth": run_depth, "models": run_models, "weights": run_weights}[args.command]

    def body() -> int:
        sys.stdout.write("".join(line + "\n" for line in run(args)))
        return 0

    return guarded_main(body)


if __name__ == "__main__":
    sys.exit(main())
