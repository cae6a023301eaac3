"""jaxent: differentiable losses for JAX, built around cross-entropy."""

from jaxent._binary import BCELoss as BCELoss
from jaxent._binary import BCEWithLogitsLoss as BCEWithLogitsLoss
from jaxent._binary import SigmoidFocalLoss as SigmoidFocalLoss
from jaxent._binary import binary_cross_entropy as binary_cross_entropy
from jaxent._binary import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from jaxent._binary import sigmoid_focal_loss as sigmoid_focal_loss
from jaxent._divergence import KLDivLoss as KLDivLoss
from jaxent._divergence import kl_divergence as kl_divergence
from jaxent._focal import FocalLoss as FocalLoss
from jaxent._focal import Poly1CrossEntropyLoss as Poly1CrossEntropyLoss
from jaxent._focal import focal_loss as focal_loss
from jaxent._focal import poly1_cross_entropy as poly1_cross_entropy
from jaxent._linear import LinearCrossEntropyLoss as LinearCrossEntropyLoss
from jaxent._linear import linear_cross_entropy as linear_cross_entropy
from jaxent._margin import HingeLoss as HingeLoss
from jaxent._margin import MultiClassHingeLoss as MultiClassHingeLoss
from jaxent._margin import MultiMarginLoss as MultiMarginLoss
from jaxent._margin import hinge_loss as hinge_loss
from jaxent._margin import multi_margin_loss as multi_margin_loss
from jaxent._margin import multiclass_hinge_loss as multiclass_hinge_loss
from jaxent._reduction import mean_denominator as mean_denominator
from jaxent._regression import MSELoss as MSELoss
from jaxent._regression import mse_loss as mse_loss
from jaxent._sharded import sharded_cross_entropy as sharded_cross_entropy
from jaxent._sharded import sharded_linear_cross_entropy as sharded_linear_cross_entropy
from jaxent._softmax import CrossEntropyLoss as CrossEntropyLoss
from jaxent._softmax import NLLLoss as NLLLoss
from jaxent._softmax import cross_entropy as cross_entropy
from jaxent._softmax import nll_loss as nll_loss

__version__ = "0.1.0"

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "HingeLoss",
    "KLDivLoss",
    "LinearCrossEntropyLoss",
    "MSELoss",
    "MultiClassHingeLoss",
    "MultiMarginLoss",
    "NLLLoss",
    "Poly1CrossEntropyLoss",
    "SigmoidFocalLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "focal_loss",
    "hinge_loss",
    "kl_divergence",
    "linear_cross_entropy",
    "mean_denominator",
    "mse_loss",
    "multi_margin_loss",
    "multiclass_hinge_loss",
    "nll_loss",
    "poly1_cross_entropy",
    "sharded_cross_entropy",
    "sharded_linear_cross_entropy",
    "sigmoid_focal_loss",
]
