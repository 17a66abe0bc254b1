"""Mixed precision on GPUs: the precision, the autocast context and the optimizer step.

bf16 where the GPU supports it (A100, H100, L4, A10G): float32's range, no loss scaling. fp16
elsewhere (V100, T4, K80), with a ``GradScaler``. On CPU, or with ``amp`` off, everything is
float32 and these are no-ops.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import torch


def amp_dtype(enabled: bool, device: torch.device) -> Optional[torch.dtype]:
    """The autocast precision, or ``None`` for float32."""
    if not enabled or device.type != "cuda":
        return None
    bf16 = getattr(torch.cuda, "is_bf16_supported", lambda: False)()
    return torch.bfloat16 if bf16 else torch.float16


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
