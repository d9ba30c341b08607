"""numba.cuda kernels (backends ``cuda`` and ``cuda-persistent``): not written yet."""


def unavailable(name: str) -> str | None:
    return "the CUDA kernels are not implemented yet"
