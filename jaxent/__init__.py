"""jaxent: differentiable losses for JAX, built around cross-entropy."""

from jaxent._softmax import CrossEntropyLoss as CrossEntropyLoss
from jaxent._softmax import NLLLoss as NLLLoss
from jaxent._softmax import cross_entropy as cross_entropy
from jaxent._softmax import nll_loss as nll_loss

__version__ = "0.1.0"

__all__ = [
    "CrossEntropyLoss",
    "NLLLoss",
    "cross_entropy",
    "nll_loss",
]
