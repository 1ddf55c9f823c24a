"""Per-network and per-layer gradient norms, measured in each optimizer's step pre-hook on the
gradients' own device (a few kernel launches, no host sync)."""

from __future__ import annotations


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
