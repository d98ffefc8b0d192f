"""Can I trust this map? Faithfulness scores (deletion, insertion, ROAD against a random map) and the sanity
checks of Adebayo et al. (cascading model randomisation, class sensitivity).

    faithfulness  Curve, perturbation_curves (deletion / insertion), road_curve, random_map
    impute        ROAD's linear imputation system: solve_exact (sparse LU), solve_fast (multigrid-preconditioned CG)
    sanity        rank_correlation, ssim, randomised_copies (on a private copy), other_class
    report        trust_report (one long job: every score for several methods), layer_sweep
"""

from explain.trust.faithfulness import FILLS, ROAD_FRACTIONS, Curve, perturbation_curves, random_map, road_curve
from explain.trust.report import (
    DEFAULT_TRUST_METHODS,
    LayerScore,
    MethodTrust,
    TrustReport,
    layer_sweep,
    main_layers,
    trust_report,
)
from explain.trust.sanity import (
    ClassSensitivity,
    RandomisationStep,
    other_class,
    randomisation_blocks,
    randomised_copies,
    rank_correlation,
    ssim,
)

__all__ = [
    "DEFAULT_TRUST_METHODS",
    "FILLS",
    "ROAD_FRACTIONS",
    "ClassSensitivity",
    "Curve",
    "LayerScore",
    "MethodTrust",
    "RandomisationStep",
    "TrustReport",
    "layer_sweep",
    "main_layers",
    "other_class",
    "perturbation_curves",
    "random_map",
    "randomisation_blocks",
    "randomised_copies",
    "rank_correlation",
    "road_curve",
    "ssim",
    "trust_report",
]
