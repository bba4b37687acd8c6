"""prunekit: does a trained neural network use all the weights it is given?

Datasets, width-scaled models, a fast cached trainer, pruning masks, neuron saliencies, metrics, the loss-surface
plane and sweeps, for reproducing four studies of that question (see the README).
"""

from .cache import Run, train_or_load
from .config import DataConfig, ModelConfig, TrainConfig
from .data import Dataset, DatasetUnavailable, Split, load_dataset
from .models import build_model, count_parameters, prunable_parameters
from .train import evaluate

__version__ = "0.1.0"

__all__ = ["DataConfig", "ModelConfig", "TrainConfig", "Dataset", "DatasetUnavailable", "Split", "load_dataset",
           "build_model", "count_parameters", "prunable_parameters", "evaluate", "Run", "train_or_load"]
