"""Torch dtypes by name, and the one context manager that sets torch's default dtype and restores it.

e3nn builds its constants (generators, Wigner D, Clebsch-Gordan tables) in torch's *default* dtype, so code that
needs them exactly builds them under a float64 default. torch is imported when these are used, not when this
module is: the core layer stays importable without it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import torch

__all__ = ["default_dtype", "dtype_names", "torch_dtype"]


def dtype_names() -> dict[str, "torch.dtype"]:
    """The model dtypes by the names model files and configs use."""
    import torch

    return {"float32": torch.float32, "float64": torch.float64}


def torch_dtype(name: str) -> "torch.dtype":
    """``"float32"`` or ``"float64"`` as a torch dtype; KeyError for any other name."""
    return dtype_names()[name]


@contextmanager
def default_dtype(dtype: "torch.dtype | None" = None) -> Iterator[None]:
    """torch's default dtype set to ``dtype`` (float64 when None) inside the block, restored after it, also on error."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if dtype is None else dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
