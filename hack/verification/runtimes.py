"""MLServer runtimes for models that misbehave on purpose, to show what a failing check says.

Loaded by MLServer from the model repository (`implementation` in model-settings.json);
each is the scikit-learn runtime with one fault added.
"""

import asyncio
import os

from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel


class SlowModel(SKLearnModel):
    """Answers correctly, but only after ADROIT_SLOW_SECONDS (default 1.5 s)."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        await asyncio.sleep(float(os.environ.get("ADROIT_SLOW_SECONDS", "1.5")))
        return await super().predict(payload)


class BrokenModel(SKLearnModel):
    """Loads, reports ready, and fails every prediction with a server error."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        raise MLServerError("the model's feature store is unreachable", status_code=500)
