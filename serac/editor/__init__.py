"""The SERAC editor: routes queries between the counterfactual model and the frozen base model."""

from serac.editor.editor import Prediction, ScopeDecision, SeracEditor

__all__ = ["Prediction", "ScopeDecision", "SeracEditor"]
