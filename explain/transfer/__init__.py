"""Transfer learning: reuse a pretrained network for your own classes with little data.

Three ways, from the course:

1. ``classifier``: the pretrained network as it is; each of the user's classes is mapped onto
   one ImageNet class (by name, else by what the network predicts for that class's photos).
2. ``extract``: the whole backbone frozen as a feature extractor; only a new head is trained.
3. ``finetune``: the last N blocks unfrozen too, with a smaller learning rate than the head.

    datasets     photos with their classes from a folder, a zip, uploads or a demo set; the split
    advisor      which strategy fits the dataset (four scenarios)
    auto         strategy "auto": the advisor measures the domain (frozen features' separability) and plans the run
    augment      random resized crops and flips
    trainer      the training run (stoppable, live progress) and its result
    evaluation   accuracy, confusion matrix, accuracy per class

The trained network is an ordinary :class:`explain.models.Backbone` (source ``trained``), so every
page can use it, and :func:`explain.models.export_model` writes it to one ``weights_only`` file.
"""

from explain.transfer.advisor import ADVICE_TEXT, STRATEGIES, Advice, advise, imagenet_rows_by_name
from explain.transfer.augment import augmentation_preview, random_resized_crop
from explain.transfer.auto import (
    AUTO,
    AUTO_TITLE,
    REASONS,
    STRATEGY_TITLES,
    DomainEstimate,
    Plan,
    Reason,
    estimate_domain,
    plan_training,
)
from explain.transfer.datasets import (
    DEMO_SETS,
    DEMO_TITLES,
    ImageSet,
    Splits,
    dataset_from_folder,
    dataset_from_uploads,
    dataset_from_zip,
    demo_dataset,
    split_dataset,
)
from explain.transfer.evaluation import Evaluation, evaluate
from explain.transfer.trainer import (
    EpochStats,
    TrainConfig,
    Trainer,
    TrainResult,
    count_parameters,
    epoch_history,
    plan_parameters,
    train_model,
)

__all__ = [
    "ADVICE_TEXT", "AUTO", "AUTO_TITLE", "REASONS", "STRATEGY_TITLES", "DomainEstimate", "Plan", "Reason", "estimate_domain", "plan_training", "DEMO_SETS", "DEMO_TITLES", "STRATEGIES", "Advice", "EpochStats", "Evaluation", "ImageSet", "Splits",
    "TrainConfig", "TrainResult", "Trainer", "advise", "augmentation_preview", "count_parameters", "dataset_from_folder",
    "dataset_from_uploads", "dataset_from_zip", "demo_dataset", "epoch_history", "evaluate", "imagenet_rows_by_name", "plan_parameters",
    "random_resized_crop", "split_dataset", "train_model",
]
