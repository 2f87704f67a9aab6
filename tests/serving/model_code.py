# MLflow "models from code" file for the serving tests: a joblib'd scikit-learn pipeline whose
# predict returns P(label=1) (the model contract); model_config "invert" makes a deliberately
# bad challenger that predicts 1 - p.
import joblib
import mlflow.models
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class ProbaModel(PythonModel):
    def load_context(self, context):
        self.pipeline = joblib.load(context.artifacts["pipeline"])
        self.invert = bool((context.model_config or {}).get("invert", False))

    def predict(self, context, model_input, params=None):
        p = np.asarray(self.pipeline.predict_proba(pd.DataFrame(model_input))[:, 1], dtype=float)
        return 1.0 - p if self.invert else p


mlflow.models.set_model(ProbaModel())
