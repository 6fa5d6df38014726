"""Training of the scope classifier, counterfactual model and offline base model."""
