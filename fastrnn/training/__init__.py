"""Training mechanics: truncated BPTT, gradient clipping (global, by value and
Lipschitz-aware) and optimizers over one flat parameter buffer."""

from .bptt import TruncatedBPTT
from .clip import clip_grad_norm, clip_grad_value

__all__ = ["TruncatedBPTT", "clip_grad_norm", "clip_grad_value"]
