"""How long each model type takes to bound the parameters of a huge model (100,000 -> 100,000).

The API calls `parameter_count` on every create, before anything is allocated, so it must stay a
formula: microseconds, not the cost of building the model. Prints one line per type.

    python bench/parameter_count.py [--repeats N]
"""

from __future__ import annotations

import argparse
import time

from sgt.ml.base import ModelShape
from sgt.ml.registry import get_model_type, model_type_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1000, help="calls timed per type")
    args = parser.parse_args()
    shape = ModelShape(100_000, 100_000)
    for name in model_type_names():
        model_type = get_model_type(name)
        began = time.perf_counter()
        for _ in range(args.repeats):
            count = model_type.parameter_count(shape)
        seconds = (time.perf_counter() - began) / args.repeats
        print(f"{name:8} {seconds * 1e6:8.2f} us per call  ({count:,} parameters)")


if __name__ == "__main__":
    main()
