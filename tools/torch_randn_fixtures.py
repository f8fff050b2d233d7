#!/usr/bin/env python3
"""Reference noise for src/models/torch_rng.rs: torch.randn on CPU, bit for bit.

torch draws CPU normals in two ways, chosen per tensor (see torch's DistributionTemplates.h):
tensors of >= 16 elements get 24-bit uniforms and a Box-Muller pass over blocks of 16; smaller
ones get a double-precision Box-Muller that caches its second value in the generator. The
16-block pass has a portable form (torch's DEFAULT kernels, C library log/sin/cos) and an
AVX2 form with polynomial log/sin/cos, which torch's AVX512 build runs too; which one runs
depends on the CPU torch detects, so the fixtures are made per capability, forcing it with
ATEN_CPU_CAPABILITY (avx512.bin equals avx2.bin; a test pins that down).

Writes tests/fixtures/torch_randn/cases.txt (one generator per line: seed, then the element
counts drawn one after another) and <form>.bin (every value, float32 little-endian, in order).

Run from the repository root with a venv that has torch:
    .venv/bin/python tools/torch_randn_fixtures.py
"""

import os
import pathlib
import subprocess
import sys

CASES = [
    (0, [20]),
    (42, [1, 2, 3, 5, 7, 15]),
    (123456789, [16, 17, 31, 33, 100]),
    (2**32 + 7, [50]),  # only the low 32 bits seed the Mersenne Twister
    (7, [3, 40, 5, 1]),  # the small path's cached value survives a large draw
    (2024, [3072]),  # a tiny Wan latent: 1 x 16 x 3 x 8 x 8
    (31337, [20160]),  # 1 x 16 x 21 x 6 x 10
]

FORMS = {"default": "DEFAULT", "avx2": "AVX2", "avx512": "AVX512"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "torch_randn"


def draw(form: str) -> None:
    import torch

    expected = FORMS[form]
    if torch.backends.cpu.get_cpu_capability() != expected:
        sys.exit(f"torch runs {torch.backends.cpu.get_cpu_capability()} kernels, wanted {expected}")
    with open(OUT / f"{form}.bin", "wb") as f:
        for seed, counts in CASES:
            torch.manual_seed(seed)
            for n in counts:
                f.write(torch.randn(n, dtype=torch.float32).numpy().astype("<f4").tobytes())


def main() -> None:
    if len(sys.argv) == 2:
        draw(sys.argv[1])
        return
    OUT.mkdir(parents=True, exist_ok=True)
    import torch

    with open(OUT / "cases.txt", "w") as f:
        f.write(f"# seed, then element counts drawn in turn; made with torch {torch.__version__}\n")
        for seed, counts in CASES:
            f.write(" ".join(str(v) for v in [seed, *counts]) + "\n")
    for form, capability in FORMS.items():
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability.lower())
        subprocess.run([sys.executable, __file__, form], env=env, check=True)


if __name__ == "__main__":
    main()
