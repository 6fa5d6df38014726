"""Evaluation: ES/DD and scope metrics, the k-edits protocol, baselines."""
