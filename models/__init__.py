"""Model zoo: architectures, training, and the safetensors checkpoints shipped for bundled data."""
from .architectures import ARCHS, ArchSpec, Exp, build_model, find_conv_layers, n_outputs_for
from .cached import CachedModel, train_cached
from .checkpoints import checkpoint_hash, load_checkpoint, save_checkpoint
from .training import TrainReport, evaluate_model, predict_proba, train_model
from .user_models import (check_model, import_model, load_model_file, register_model, register_model_file,
                          remove_model, user_models)
from .zoo import available_models, load_model, shipped_path, trained_checkpoints, trained_dir, trained_path

__all__ = ["ARCHS", "ArchSpec", "Exp", "build_model", "find_conv_layers", "n_outputs_for",
           "checkpoint_hash", "load_checkpoint", "save_checkpoint", "TrainReport", "evaluate_model",
           "predict_proba", "train_model", "available_models", "load_model", "shipped_path", "trained_checkpoints",
           "trained_dir", "check_model", "import_model", "load_model_file", "register_model", "register_model_file",
           "remove_model", "user_models", "CachedModel", "train_cached", "trained_path"]
