"""jaxent: differentiable losses for JAX, built around cross-entropy."""

from jaxent._binary import BCELoss as BCELoss
from jaxent._binary import BCEWithLogitsLoss as BCEWithLogitsLoss
from jaxent._binary import SigmoidFocalLoss as SigmoidFocalLoss
from jaxent._binary import binary_cross_entropy as binary_cross_entropy
from jaxent._binary import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from jaxent._binary import sigmoid_focal_loss as sigmoid_focal_loss
from jaxent._ctc import CTCLoss as CTCLoss
from jaxent._ctc import ctc_loss as ctc_loss
from jaxent._divergence import GeneralizedKLDivLoss as GeneralizedKLDivLoss
from jaxent._divergence import KLDivLoss as KLDivLoss
from jaxent._divergence import convex_kl_divergence as convex_kl_divergence
from jaxent._divergence import generalized_kl_divergence as generalized_kl_divergence
from jaxent._divergence import kl_divergence as kl_divergence
from jaxent._embedding import CosineDistanceLoss as CosineDistanceLoss
from jaxent._embedding import CosineEmbeddingLoss as CosineEmbeddingLoss
from jaxent._embedding import CosineSimilarity as CosineSimilarity
from jaxent._embedding import HingeEmbeddingLoss as HingeEmbeddingLoss
from jaxent._embedding import MarginRankingLoss as MarginRankingLoss
from jaxent._embedding import NTXentLoss as NTXentLoss
from jaxent._embedding import TripletMarginLoss as TripletMarginLoss
from jaxent._embedding import TripletMarginWithDistanceLoss as TripletMarginWithDistanceLoss
from jaxent._embedding import cosine_distance as cosine_distance
from jaxent._embedding import cosine_embedding_loss as cosine_embedding_loss
from jaxent._embedding import cosine_similarity as cosine_similarity
from jaxent._embedding import hinge_embedding_loss as hinge_embedding_loss
from jaxent._embedding import margin_ranking_loss as margin_ranking_loss
from jaxent._embedding import ntxent as ntxent
from jaxent._embedding import triplet_margin_loss as triplet_margin_loss
from jaxent._embedding import triplet_margin_with_distance_loss as triplet_margin_with_distance_loss
from jaxent._focal import FocalLoss as FocalLoss
from jaxent._focal import Poly1CrossEntropyLoss as Poly1CrossEntropyLoss
from jaxent._focal import focal_loss as focal_loss
from jaxent._focal import poly1_cross_entropy as poly1_cross_entropy
from jaxent._linear import LinearCrossEntropyLoss as LinearCrossEntropyLoss
from jaxent._linear import linear_cross_entropy as linear_cross_entropy
from jaxent._margin import HingeLoss as HingeLoss
from jaxent._margin import MultiClassHingeLoss as MultiClassHingeLoss
from jaxent._margin import MultiClassPerceptronLoss as MultiClassPerceptronLoss
from jaxent._margin import MultiLabelMarginLoss as MultiLabelMarginLoss
from jaxent._margin import MultiLabelSoftMarginLoss as MultiLabelSoftMarginLoss
from jaxent._margin import MultiMarginLoss as MultiMarginLoss
from jaxent._margin import PerceptronLoss as PerceptronLoss
from jaxent._margin import SoftMarginLoss as SoftMarginLoss
from jaxent._margin import hinge_loss as hinge_loss
from jaxent._margin import multi_margin_loss as multi_margin_loss
from jaxent._margin import multiclass_hinge_loss as multiclass_hinge_loss
from jaxent._margin import multiclass_perceptron_loss as multiclass_perceptron_loss
from jaxent._margin import multilabel_margin_loss as multilabel_margin_loss
from jaxent._margin import multilabel_soft_margin_loss as multilabel_soft_margin_loss
from jaxent._margin import perceptron_loss as perceptron_loss
from jaxent._margin import soft_margin_loss as soft_margin_loss
from jaxent._ranking import RankingSoftmaxLoss as RankingSoftmaxLoss
from jaxent._ranking import ranking_softmax_loss as ranking_softmax_loss
from jaxent._reduction import mean_denominator as mean_denominator
from jaxent._regression import GaussianNLLLoss as GaussianNLLLoss
from jaxent._regression import HuberLoss as HuberLoss
from jaxent._regression import L1Loss as L1Loss
from jaxent._regression import L2Loss as L2Loss
from jaxent._regression import LogCoshLoss as LogCoshLoss
from jaxent._regression import MSELoss as MSELoss
from jaxent._regression import PoissonNLLLoss as PoissonNLLLoss
from jaxent._regression import SmoothL1Loss as SmoothL1Loss
from jaxent._regression import gaussian_nll_loss as gaussian_nll_loss
from jaxent._regression import huber_loss as huber_loss
from jaxent._regression import l1_loss as l1_loss
from jaxent._regression import l2_loss as l2_loss
from jaxent._regression import log_cosh as log_cosh
from jaxent._regression import mse_loss as mse_loss
from jaxent._regression import poisson_nll_loss as poisson_nll_loss
from jaxent._regression import smooth_l1_loss as smooth_l1_loss
from jaxent._segmentation import BinaryDiceLoss as BinaryDiceLoss
from jaxent._segmentation import DiceLoss as DiceLoss
from jaxent._segmentation import MulticlassGeneralizedDiceLoss as MulticlassGeneralizedDiceLoss
from jaxent._segmentation import binary_dice_loss as binary_dice_loss
from jaxent._segmentation import dice_loss as dice_loss
from jaxent._segmentation import multiclass_generalized_dice_loss as multiclass_generalized_dice_loss
from jaxent._sharded import sharded_cross_entropy as sharded_cross_entropy
from jaxent._sharded import sharded_linear_cross_entropy as sharded_linear_cross_entropy
from jaxent._softmax import CrossEntropyLoss as CrossEntropyLoss
from jaxent._softmax import NLLLoss as NLLLoss
from jaxent._softmax import cross_entropy as cross_entropy
from jaxent._softmax import nll_loss as nll_loss
from jaxent._softmax import smooth_labels as smooth_labels
from jaxent._sparse import MulticlassSparsemaxLoss as MulticlassSparsemaxLoss
from jaxent._sparse import SparsemaxLoss as SparsemaxLoss
from jaxent._sparse import make_fenchel_young_loss as make_fenchel_young_loss
from jaxent._sparse import multiclass_sparsemax_loss as multiclass_sparsemax_loss
from jaxent._sparse import sparsemax_loss as sparsemax_loss
from jaxent._stats import LogSoftmaxStats as LogSoftmaxStats
from jaxent._stats import linear_log_softmax_stats as linear_log_softmax_stats
from jaxent._stats import log_softmax_stats as log_softmax_stats

__version__ = "0.1.0"

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "BinaryDiceLoss",
    "CTCLoss",
    "CosineDistanceLoss",
    "CosineEmbeddingLoss",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "GaussianNLLLoss",
    "GeneralizedKLDivLoss",
    "HingeEmbeddingLoss",
    "HingeLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "L2Loss",
    "LinearCrossEntropyLoss",
    "LogCoshLoss",
    "LogSoftmaxStats",
    "MSELoss",
    "MarginRankingLoss",
    "MultiClassHingeLoss",
    "MultiClassPerceptronLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
    "MultiMarginLoss",
    "MulticlassGeneralizedDiceLoss",
    "MulticlassSparsemaxLoss",
    "NLLLoss",
    "NTXentLoss",
    "PerceptronLoss",
    "PoissonNLLLoss",
    "Poly1CrossEntropyLoss",
    "RankingSoftmaxLoss",
    "SigmoidFocalLoss",
    "SmoothL1Loss",
    "SoftMarginLoss",
    "SparsemaxLoss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "ctc_loss",
    "dice_loss",
    "focal_loss",
    "gaussian_nll_loss",
    "generalized_kl_divergence",
    "hinge_embedding_loss",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "l1_loss",
    "l2_loss",
    "linear_cross_entropy",
    "linear_log_softmax_stats",
    "log_cosh",
    "log_softmax_stats",
    "make_fenchel_young_loss",
    "margin_ranking_loss",
    "mean_denominator",
    "mse_loss",
    "multi_margin_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "ntxent",
    "perceptron_loss",
    "poisson_nll_loss",
    "poly1_cross_entropy",
    "ranking_softmax_loss",
    "sharded_cross_entropy",
    "sharded_linear_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_l1_loss",
    "smooth_labels",
    "soft_margin_loss",
    "sparsemax_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
