"""Tensor summaries and their read-back: what ``run.log`` makes of a tensor on its device, and
how the sender thread brings the values to the host. torch is imported lazily: the client works
without it. PNG grids are in trainer_client.images, gradient norms in trainer_client.grad_norms.

Nothing here forces a host sync in the training thread. Summaries are launched on the tensor's
own device; values come back to the host in the sender thread, in one copy per device per flush,
through pinned memory and a CUDA event that is polled (not waited on with a blocking sync).
"""

from __future__ import annotations

import math
import sys
import time

TENSOR_TYPES: set[type] = set()  # torch.Tensor and the subclasses seen so far


def is_tensor(value) -> bool:
    kind = type(value)
    if kind in TENSOR_TYPES:
        return True
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
        TENSOR_TYPES.add(kind)
        return True
    return False


def summarise(value):
    """A loggable scalar from a number, numpy value or tensor (a multi-element tensor: its mean)."""
    if is_tensor(value):
        t = value.detach()
        if t.dim() != 0:
            t = t.reshape(()) if t.numel() == 1 else t.float().mean()
        return t
    if hasattr(value, "item"):  # numpy scalars and 0-d arrays
        return float(value.mean()) if getattr(value, "size", 1) != 1 else float(value.item())
    return float(value)


def diversity(batch, max_samples: int):
    """Mean pairwise L2 distance within a batch, per sqrt(feature), on the batch's device.

    Dividing by sqrt(features) makes it the RMS difference per pixel, comparable across image
    sizes; the fake/real ratio is what the mode-collapse rule reads.
    """
    import torch

    with torch.no_grad():
        x = batch.detach()[:max_samples].reshape(min(max_samples, batch.shape[0]), -1).float()
        if x.shape[0] < 2:
            return None
        return torch.pdist(x).mean() / math.sqrt(x.shape[1])


def to_host(t, deadline: float):
    """Copy a tensor to the CPU without a blocking sync; None if not done by the deadline."""
    import torch

    if t.device.type != "cuda":
        return t
    host = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    host.copy_(t, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    delay = 0.0005
    while not event.query():  # polling: never a cudaStreamSynchronize
        if time.monotonic() > deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return host


def materialise(tensors: list, deadline: float) -> list[float] | None:
    """Read back 0-d tensors (or, separately, 1-d ones) as one flat list of floats.

    One stack (or cat) and one copy per device: the per-tensor Python work stays tiny, which
    matters because this thread shares the GIL with the training loop.
    """
    import torch

    if not tensors:
        return []
    join = torch.stack if tensors[0].dim() == 0 else torch.cat
    devices = {tensors[0].device, tensors[-1].device}
    if len(devices) == 1:
        try:
            host = to_host(join(tensors).to(torch.float64), deadline)
            return None if host is None else host.tolist()
        except RuntimeError:  # tensors on several devices after all
            pass
    by_device: dict = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    sizes = [t.numel() for t in tensors]
    chunks: list = [None] * len(tensors)
    for idx in by_device.values():
        values = materialise([tensors[i] for i in idx], deadline)
        if values is None:
            return None
        pos = 0
        for i in idx:
            chunks[i] = values[pos:pos + sizes[i]]
            pos += sizes[i]
    return [v for chunk in chunks for v in chunk]
