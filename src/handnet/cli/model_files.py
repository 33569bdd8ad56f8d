"""Model files on the command line: load, save and describe a trained model."""

from __future__ import annotations

from typing import Any

from .checks import _check_input_path


def _model_files() -> Any:
    """handnet.io, where ``save`` and ``load`` live (imported only when a model file is used)."""
    from .. import io as model_files

    return model_files


def _save_model(model: Any, path: str) -> None:
    try:
        _model_files().save(model, path)
    except OSError as error:
        # Name the user's path: the failing file may be the temporary one beside it.
        raise OSError(
            error.errno, f"cannot write the model file ({error.strerror or error})", path
        ) from None


def _load_model(path: str) -> Any:
    _check_input_path(path, "model file")
    return _model_files().load(path)


def _load_estimator(path: str, command: str) -> Any:
    model = _load_model(path)
    if not hasattr(model, "predict") or not hasattr(model, "n_features_in_"):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not a trained model; "
            f"'handnet {command}' needs a file saved by 'handnet train' or handnet.save(model)"
        )
    return model


def _is_classifier(model: Any) -> bool:
    return hasattr(model, "classes_") and hasattr(model, "predict_proba")


def _describe_model(model: Any) -> str:
    """``MLPClassifier 2-32-16-1 (relu)``: the class and the layer widths."""
    from ..nn.layers import Activation, Dense, Dropout

    layers = model.network_.layers
    if not all(isinstance(layer, (Activation, Dense, Dropout)) for layer in layers):
        return f"{type(model).__name__} " + " -> ".join(repr(layer) for layer in layers)
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    widths = [str(dense[0].n_inputs)] + [str(layer.n_outputs) for layer in dense]
    activations = sorted({layer.name for layer in layers if isinstance(layer, Activation)})
    dropout = [layer.rate for layer in layers if isinstance(layer, Dropout)]
    text = f"{type(model).__name__} {'-'.join(widths)}"
    if activations:
        text += f" ({', '.join(activations)}"
        text += f", dropout {dropout[0]:g})" if dropout else ")"
    return text
