"""Everything that touches tensors. torch is imported lazily: the client works without it.

Nothing here forces a host sync in the training thread. Summaries are launched on the tensor's
own device; values come back to the host in the sender thread, in one copy per device per flush,
through pinned memory and a CUDA event that is polled (not waited on with a blocking sync).
"""

from __future__ import annotations

import io
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


def image_grid_png(batch, *, nrow: int | None = None, padding: int = 2,
                   compress_level: int = 1) -> bytes | None:
    """A PNG grid of an image batch (N, C, H, W) or (N, H, W) on the CPU; None if not images.

    Values in [-1, 1] (tanh output) map to [0, 255]; values in [0, 1] scale by 255; anything else
    is min-max normalised. compress_level 1 keeps encoding cheap (it runs in the sender thread).
    """
    import numpy as np
    from PIL import Image

    x = batch.detach().float().cpu().numpy() if is_tensor(batch) else np.asarray(batch, "float32")
    if x.ndim == 2 and x.shape[1] == 2:
        return scatter_png(x, compress_level=compress_level)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        return None
    n, c, h, w = x.shape
    if c not in (1, 3):
        x = x[:, :3] if c > 3 else x[:, :1]
        c = x.shape[1]
    finite = np.isfinite(x)
    lo = float(x[finite].min()) if finite.any() else 0.0
    hi = float(x[finite].max()) if finite.any() else 1.0
    if lo >= -1.0 - 1e-3 and hi <= 1.0 + 1e-3 and lo < 0:
        x = (x + 1.0) / 2.0
    elif not (lo >= 0.0 and hi <= 1.0):
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    x = np.nan_to_num(np.clip(x, 0.0, 1.0), nan=0.0)
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    ncol = int(math.ceil(n / nrow))
    grid = np.zeros((c, ncol * (h + padding) + padding, nrow * (w + padding) + padding), "float32")
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = x[i]
    pixels = (grid * 255.0 + 0.5).astype("uint8")
    image = Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def scatter_png(points, size: int = 256, compress_level: int = 1) -> bytes | None:
    """A batch of 2D points (a GAN on a Gaussian mixture) as a square scatter plot, axes
    symmetric around 0: where G puts its samples, and which modes it has dropped."""
    import numpy as np
    from PIL import Image

    pts = np.asarray(points, dtype="float64")
    pts = pts[np.isfinite(pts).all(1)]
    if len(pts) == 0:
        return None
    lim = float(np.abs(pts).max()) * 1.1 or 1.0
    hist, _, _ = np.histogram2d(-pts[:, 1], pts[:, 0], bins=size,
                                range=[[-lim, lim], [-lim, lim]])
    pixels = np.full((size, size), 255, dtype="uint8")
    pixels[size // 2, :] = pixels[:, size // 2] = 220  # the axes, faintly
    pixels[hist > 0] = 0
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def layer_of(param_name: str) -> str:
    """'main.3.weight' -> 'main.3': a layer is the module that owns the parameter."""
    head, _, _ = param_name.rpartition(".")
    return head or param_name


class GradNormProbe:
    """Gradient norms of one network, measured in its optimizer's step pre-hook.

    Measuring at the optimizer step means D's norm is the gradient D is about to apply, not what
    G's backward pass later leaves in D's parameters. One fused ``_foreach_norm`` over all
    parameters, then per-layer sums with one ``index_add_``: a handful of kernel launches, no sync.
    """

    def __init__(self, net: str, optimizer, model=None, every: int = 1, sink=None) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
        layers: list[str] = []
        param_layer: list[int] = []
        for i, p in enumerate(params):
            layer = layer_of(names[id(p)]) if id(p) in names else f"param{i}"
            if layer not in layers:
                layers.append(layer)
            param_layer.append(layers.index(layer))
        self.net = net
        self.params = params
        self.param_layer = param_layer
        self.keys = [f"grad_norm/{net}"] + [f"grad_norm/{net}/{layer}" for layer in layers]
        self.n_layers = len(layers)
        self.every = max(1, int(every))
        self.sink = sink  # called with (keys, tensor of len(keys) norms)
        self._index_cache: dict = {}
        self.handle = optimizer.register_step_pre_hook(self._hook)

    def _index(self, present: tuple, device):
        """Layer index of each present gradient, made on the device once (no host copy)."""
        key = (present, device)
        index = self._index_cache.get(key)
        if index is None:
            import torch

            layers = [self.param_layer[i] for i in present]
            index = torch.cat([torch.full((1,), layer, dtype=torch.long, device=device)
                               for layer in layers])
            self._index_cache[key] = index
        return index

    def measure(self):
        """(keys, tensor of norms) for the gradients in the parameters now, or None."""
        import torch

        present = tuple(i for i, p in enumerate(self.params) if p.grad is not None)
        if not present:
            return None
        grads = [self.params[i].grad for i in present]
        device = grads[0].device
        with torch.no_grad():
            norms = torch.stack(torch._foreach_norm(grads)).float()
            sq = norms * norms
            per_layer = torch.zeros(self.n_layers, device=device, dtype=sq.dtype)
            per_layer.index_add_(0, self._index(present, device), sq)
            return self.keys, torch.cat([sq.sum().reshape(1), per_layer]).sqrt()

    def _hook(self, optimizer, args, kwargs) -> None:
        try:
            if self.sink is not None and self.sink.wants_grad_norms(self.every):
                measured = self.measure()
                if measured is not None:
                    self.sink.add_vector(self.net, *measured)
        except Exception as exc:  # never raise into optimizer.step()
            if self.sink is not None:
                self.sink.note_error(f"gradient norm of {self.net}", exc)

    def remove(self) -> None:
        self.handle.remove()
