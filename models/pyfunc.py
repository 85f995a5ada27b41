"""The logged model: an MLflow pyfunc that any MLflow tool can load and run.

Contract: ``mlflow.pyfunc.load_model("models:/sunflower-relapse@champion")
.predict(frame)`` takes the frame :func:`features.build_features` returns
(extra columns such as person_id and as_of are ignored; the model's columns
are picked by name) and returns the calibrated probabilities as a float
array, one per row. The artifacts are three plain files
(:mod:`models.predictor`): the LightGBM model text, the Platt parameters and
the ordered feature list.

The logged model is self-contained (issue 18): it carries the code it runs
(``code_paths``: the :mod:`models` package only, :data:`CODE_PACKAGES`; the
pyfunc imports nothing from :mod:`features` or :mod:`serving`) and the full
pinned tree of what that code imports (:func:`model_requirements`: mlflow,
lightgbm, numpy, pandas and all their dependencies at the versions installed,
which are requirements.lock's). So ``mlflow.pyfunc.load_model`` works where
Sunflower is not installed: a fresh venv with only the model's
``requirements.txt``, ``mlflow models serve``, Spark executors.
``tests/models/test_portable.py`` proves it. The three files alone are still
enough to rebuild the model anywhere.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc.model import PythonModel, PythonModelContext
from mlflow.types import ColSpec, Schema, TensorSpec
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from models.predictor import CALIBRATION_FILE, FEATURES_FILE, MODEL_FILE, CalibratedBooster

#: What the pyfunc's code imports at run time (the roots of :func:`model_requirements`).
RUNTIME_PACKAGES = ("mlflow", "lightgbm", "numpy", "pandas")
#: The project's packages logged as ``code_paths``: the import closure of this module.
CODE_PACKAGES = ("models",)


def model_requirements(roots: tuple[str, ...] = RUNTIME_PACKAGES) -> list[str]:
    """``name==version`` for ``roots`` and everything they require, as installed.

    Walks the installed distributions' metadata (markers evaluated for this
    interpreter, no extras), so the pins are the ones the model was trained
    with: requirements.lock's in a ``make setup`` environment.
    """
    pins: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in pins:
            continue
        dist = metadata.distribution(name)
        pins[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def code_paths() -> list[str]:
    """The folders of :data:`CODE_PACKAGES`, copied into the model's ``code/``."""
    here = Path(__file__).resolve().parent  # models/
    return [str(here.parent / package) for package in CODE_PACKAGES]


def frame_matrix(frame: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The model's columns of a features frame, by name, as float64."""
    missing = [n for n in feature_names if n not in frame.columns]
    if missing:
        raise ValueError(
            f"the frame lacks {len(missing)} model feature(s), e.g. {missing[:3]}; "
            "pass the frame build_features returns"
        )
    return frame[feature_names].to_numpy(dtype=np.float64)


class SunflowerModel(PythonModel):
    """Calibrated LightGBM over the feature catalog's columns."""

    def load_context(self, context: PythonModelContext) -> None:
        folder = Path(context.artifacts["model"]).parent
        self.predictor = CalibratedBooster.load(folder)

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        X = frame_matrix(pd.DataFrame(model_input), self.predictor.feature_names)
        return self.predictor.predict(X)


def signature(feature_names: list[str]) -> ModelSignature:
    inputs = Schema([ColSpec("double", n) for n in feature_names])
    outputs = Schema([TensorSpec(np.dtype("float64"), (-1,))])
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_pyfunc(predictor: CalibratedBooster, registered_model_name: str | None = None) -> ModelInfo:
    """Log the predictor as an MLflow model in the active run (and register it)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = predictor.save(Path(tmp))
        info: ModelInfo = mlflow.pyfunc.log_model(
            name="model",
            python_model=SunflowerModel(),
            artifacts={
                "model": str(paths["model"]),
                "calibration": str(paths["calibration"]),
                "features": str(paths["features"]),
            },
            signature=signature(predictor.feature_names),
            input_example=pd.DataFrame(
                [[0.0] * len(predictor.feature_names)], columns=predictor.feature_names
            ),
            registered_model_name=registered_model_name,
            code_paths=code_paths(),
            pip_requirements=model_requirements(),
        )
    return info


ARTIFACT_FILES = (MODEL_FILE, CALIBRATION_FILE, FEATURES_FILE)
