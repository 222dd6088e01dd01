"""The MLflow pyfunc model that wraps one of our verified artifacts.

MLflow's sklearn flavor would re-serialize the model with skops, which refuses
HistGradientBoosting's tree predictor unless it is trusted by hand; and it would drop our
SHA-256 verification. Instead the exported model carries our artifact file unchanged and
loads it only through :func:`~ml_assets.lib.core.artifacts.load_model`, which checks the
SHA-256 the file is named by. Loading needs ``ml_assets`` importable (this class lives here).
Imports MLflow: use only with the ``mlflow`` extra installed.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from ml_assets.lib.core.artifacts import load_model

#: Name of the artifact entry holding the registry's model file (``<sha256>.pkl``).
BUNDLE = "bundle"


class VerifiedBundleModel(mlflow.pyfunc.PythonModel):
    """Scores a frame of features with a registry artifact, verified when loaded.

    Parameters
    ----------
    feature_names : list of str
        Column order the model was trained on (the spec's ``feature_names``).
    """

    def __init__(self, feature_names: list[str]):
        self.feature_names = list(feature_names)
        self._model = None

    def load_context(self, context) -> None:
        """Load the bundle through SHA-256 verification (the file name is its digest).

        Raises
        ------
        ArtifactIntegrityError
            The artifact's bytes do not match the digest it was registered with.
        """
        path = Path(context.artifacts[BUNDLE])
        self._model = load_model(path, path.stem)["model"]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        """Fraud probability per row.

        Parameters
        ----------
        model_input : pandas.DataFrame, shape (n, n_features)
            One column per feature name (float64; categories already encoded as the feature
            code encodes them).

        Returns
        -------
        numpy.ndarray, shape (n,)
            ``predict_proba[:, 1]``, identical to the serving and batch paths.
        """
        x = model_input[self.feature_names].to_numpy(dtype="float64")
        return self._model.predict_proba(x)[:, 1]
