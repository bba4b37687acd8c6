"""prunekit: does a trained neural network use all the weights it is given?

Datasets, width-scaled models, a fast cached trainer, pruning masks, neuron saliencies, metrics, the loss-surface
plane and sweeps, for reproducing four studies of that question (see the README).
"""

from .core.runtime import configure_environment

configure_environment()  # before torch loads OpenMP: see prunekit.core.runtime

from .core.store import Run, train_or_load  # noqa: E402
from .core.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from .core.data import Dataset, DatasetUnavailable, Split, load_dataset  # noqa: E402
from .core.models import build_model  # noqa: E402
from .core.prunable import count_parameters, prunable_parameters  # noqa: E402
from .core.train import evaluate  # noqa: E402

__version__ = "0.1.0"

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "Dataset", "DatasetUnavailable", "Split", "load_dataset",
           "build_model", "count_parameters", "prunable_parameters", "evaluate", "Run", "train_or_load"]
