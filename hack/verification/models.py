"""Write a model repository for MLServer: small scikit-learn models trained here.

Run with the MLServer virtualenv's Python (hack/verification/mlserver.sh):
    python models.py DIR
Models (each a folder with model.joblib and model-settings.json):
    iris         logistic regression on the iris data set: the good model
    iris-wrong   trained on shifted labels: answers, but wrongly
    iris-slow    the good model, answering after 1.5 s (runtimes.SlowModel)
    iris-broken  loads, is ready, answers every prediction with HTTP 500 (runtimes.BrokenModel)
"""

import json
import shutil
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = Path(__file__).resolve().parent
MODELS = {
    "iris": ("mlserver_sklearn.SKLearnModel", 0),
    "iris-wrong": ("mlserver_sklearn.SKLearnModel", 1),
    "iris-slow": ("runtimes.SlowModel", 0),
    "iris-broken": ("runtimes.BrokenModel", 0),
}


def main(root: Path) -> None:
    features, labels = load_iris(return_X_y=True)
    root.mkdir(parents=True, exist_ok=True)
    for name, (implementation, shift) in MODELS.items():
        folder = root / name
        folder.mkdir(exist_ok=True)
        model = LogisticRegression(max_iter=1000).fit(features, (labels + shift) % 3)
        joblib.dump(model, folder / "model.joblib")
        if implementation.startswith("runtimes."):
            shutil.copy(HERE / "runtimes.py", folder / "runtimes.py")
        settings = {
            "name": name,
            "implementation": implementation,
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }
        (folder / "model-settings.json").write_text(json.dumps(settings, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
