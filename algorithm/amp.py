"""Mixed precision on GPUs: the precision, the autocast context and the optimizer step.

bf16 where the GPU supports it (A100, H100, L4, A10G): float32's range, no loss scaling. fp16
elsewhere (V100, T4, K80), with a ``GradScaler``. On CPU, or with ``amp`` off, everything is
float32 and these are no-ops. ``DETECTCTL_AMP_DTYPE=float16`` (or ``bfloat16``) overrides the
choice, to run the V100's fp16 path on a newer card.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Optional

import torch

DTYPE_VARIABLE = "DETECTCTL_AMP_DTYPE"


def amp_dtype(enabled: bool, device: torch.device) -> Optional[torch.dtype]:
    """The autocast precision, or ``None`` for float32."""
    if not enabled or device.type != "cuda":
        return None
    forced = os.environ.get(DTYPE_VARIABLE, "").strip().lower()
    if forced:
        if forced not in ("float16", "bfloat16"):
            raise ValueError(f"{DTYPE_VARIABLE}={forced!r}: use float16 or bfloat16")
        return getattr(torch, forced)
    bf16 = getattr(torch.cuda, "is_bf16_supported", lambda: False)()
    return torch.bfloat16 if bf16 else torch.float16


def describe(dtype: Optional[torch.dtype]) -> str:
    """How a step runs in ``dtype``, for the job's log."""
    if dtype is None:
        return "float32"
    scaling = " with loss scaling" if dtype == torch.float16 else ""
    return f"{str(dtype).replace('torch.', '')} autocast{scaling}"


def grad_scaler(dtype: Optional[torch.dtype]) -> Any:
    """A loss scaler for fp16; ``None`` otherwise (bf16 has float32's range)."""
    if dtype != torch.float16:
        return None
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()  # PyTorch 1.12 (the P2 image)


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                      scaler: Any) -> None:
    """Backward pass and optimizer step, through ``scaler`` when there is one."""
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
