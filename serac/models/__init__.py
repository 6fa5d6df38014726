"""Models: encoder loading, scope classifier, counterfactual model, frozen base model."""
