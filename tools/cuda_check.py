"""Compile every kernel family's CUDA sources against a CUDA build of torch (no GPU needed).

    make cuda-check        (creates .venv-cuda with a CUDA build of torch, then runs this)

With a GPU present it also runs the kernel tests on it (``pytest tests/ops``). Without one it
can only show that the .cu files compile and the extensions load: their results on a GPU are
checked only where a GPU is lent (see docs/PERFORMANCE.md for what has run where).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# torch finds the toolkit through CUDA_HOME (else from nvcc's path, which fails for a /usr/local/bin link)
if "CUDA_HOME" not in os.environ and Path("/usr/local/cuda/bin/nvcc").is_file():
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# Hopper (9.0) plus Ampere (8.0, runs on 8.x) and PTX for newer cards; override with the env var.
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")

import torch  # noqa: E402

from nerfhead.ops import backend  # noqa: E402


def cuda_library_includes() -> list[str]:
    """Header folders of the CUDA libraries that came with torch's pip wheels (cuSPARSE, cuBLAS, ...):
    torch's CUDA headers include them, and a toolkit with only nvcc lacks them."""
    import site

    found = set()
    for root in site.getsitepackages():
        for header in Path(root, "nvidia").glob("**/include/*.h"):
            found.add(str(header.parent))
    return sorted(found)


def main() -> int:
    if torch.version.cuda is None:
        print(f"torch {torch.__version__} has no CUDA: run this with a CUDA build (make cuda-check)")
        return 2
    if not backend.cuda_build_possible():
        print("no CUDA compiler found (set CUDA_HOME or put nvcc on PATH)")
        return 2
    extra = " ".join(f"-I{d}" for d in cuda_library_includes())
    if extra:
        os.environ["NVCC_APPEND_FLAGS"] = (os.environ.get("NVCC_APPEND_FLAGS", "") + " " + extra).strip()
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, archs {os.environ['TORCH_CUDA_ARCH_LIST']}, "
          f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    failed = 0
    for family in backend.FAMILIES:
        t0 = time.perf_counter()
        try:
            module = backend.build(family, with_cuda=True)
        except Exception as exc:  # noqa: BLE001 - report every family, then fail
            failed += 1
            print(f"{family}: FAILED to compile with CUDA:\n{exc}")
            continue
        names = sorted(n for n in dir(module) if not n.startswith("_"))
        print(f"{family}: compiled with CUDA in {time.perf_counter() - t0:.0f} s; exports {', '.join(names)}")
    if failed:
        return 1
    if torch.cuda.is_available():
        import pytest

        return pytest.main(["-q", str(REPO / "tests" / "ops")])
    print("no GPU here: the CUDA kernels compiled and loaded, but were not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
