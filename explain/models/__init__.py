"""Networks: the registry, a loaded Backbone, model files (weights, exports), anatomy, heads, summaries.

    registry   what each backbone is: builder, preprocessing, weight sources and status
    backbone   a loaded network with its class names and preprocessing
    files      load weights (offline package, torch hub cache, a user's file), export and open "my model"
    anatomy    where the stem, blocks and classifier are (for freezing and new heads)
    heads      new classifier heads from a plain spec
    summary    a Keras-style table of the layers
"""

from explain.models.anatomy import Anatomy, anatomy_of, run_modules, set_submodule
from explain.models.backbone import (
    Backbone,
    default_device,
    prepare_for_viewing,
    resolve_class,
    trained_backbone,
    with_preprocess,
)
from explain.models.files import (
    export_model,
    guess_architecture,
    load_backbone,
    load_checkpoint,
    load_model,
    load_model_file,
    load_state_checked,
    save_model,
)
from explain.models.heads import HEADS, build_head
from explain.models.registry import (
    DEFAULT_BACKBONE,
    REGISTRY,
    STATUSES,
    BackboneSpec,
    build_architecture,
    get_spec,
    imagenet_categories,
    weight_status,
)
from explain.models.summary import ModelSummary, SummaryRow, summarize

__all__ = [
    "Anatomy", "Backbone", "BackboneSpec", "DEFAULT_BACKBONE", "HEADS", "ModelSummary", "REGISTRY", "STATUSES", "SummaryRow",
    "anatomy_of", "build_architecture", "build_head", "default_device", "export_model", "get_spec", "guess_architecture",
    "imagenet_categories", "load_backbone", "load_checkpoint", "load_model", "load_model_file", "load_state_checked", "prepare_for_viewing",
    "resolve_class", "run_modules", "save_model", "set_submodule", "summarize", "trained_backbone", "weight_status",
    "with_preprocess",
]
