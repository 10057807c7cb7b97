"""Benchmark: building the code-location image's wheel (deploy/Dockerfile's ``pip install .``).

The packaging step of the image, reproduced without Docker as ``deploy/test_image.py`` does:
the build stage's COPY set (nothing else) copied into an empty folder, then
``pip wheel --no-deps --no-build-isolation`` offline. The test checks what the wheel holds;
how long the build takes is measured here (it was a ``< 30 s`` assert in the test).

Run:  .venv/bin/python benchmarks/image_wheel.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The wheel ships only seedtest_assets: the test package (the Dockerfile reader) comes from
# the checkout.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from common import machine

from seedtest_assets_tests.deploy.test_image import build_image_wheel, parse_dockerfile

GOAL_S = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="builds (median reported)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    print(f"machine: {machine()}")
    dockerfile = parse_dockerfile()
    seconds = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="image_wheel_") as tmp:
            context, out = Path(tmp) / "context", Path(tmp) / "wheel"
            context.mkdir()
            out.mkdir()
            t0 = time.perf_counter()
            wheel = build_image_wheel(dockerfile, context, out)
            seconds.append(time.perf_counter() - t0)
            size = wheel.stat().st_size
        print(f"  build {i + 1}: {seconds[-1]:.2f} s ({wheel.name}, {size / 1024:.0f} KiB)")
    median = statistics.median(seconds)
    met = "met" if median <= GOAL_S else "NOT met"
    print(
        f"image wheel (COPY set + pip wheel): median {median:.2f} s of {args.repeat} "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f}); goal <= {GOAL_S:.0f} s: {met}"
    )


if __name__ == "__main__":
    main()
