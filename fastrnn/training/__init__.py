"""Training mechanics: gradient clipping (more to come: the BPTT engine, optimizers)."""

from .clip import clip_grad_norm, clip_grad_value

__all__ = ["clip_grad_norm", "clip_grad_value"]
