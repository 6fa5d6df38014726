"""LoRA adapters for the ``causal_lora`` counterfactual kind (peft).

A pretrained causal LM (SmolLM2 by default) stays frozen; peft adds low-rank
adapters to its linear layers and only those train. The artifact keeps the
adapter weights alone (a few MB in ``model.safetensors``) plus a reference to the
base weights (name/path + revision), which are loaded again, never copied.
"""

from __future__ import annotations

from torch import nn

LORA_RANK = 8
LORA_ALPHA = 16
ADAPTER_MARKER = "lora_"
DEFAULT_TEMPLATE = "Fact: {edit_input} {edit_label}\nQuestion: {query}\nAnswer:"
"""Input of the ``causal_lora`` counterfactual variant: a causal LM continues after "Answer:" (the
seq2seq kinds' ``[SEP]`` template gives a causal LM no cue where the answer starts)."""


def attach_lora(model: nn.Module) -> nn.Module:
    """Freeze ``model`` and wrap it with trainable LoRA adapters on every linear layer but the head."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        task_type="CAUSAL_LM", r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules="all-linear"
    )
    return get_peft_model(model, config)


def adapter_state_dict(model: nn.Module) -> dict:
    """Only the adapter tensors (contiguous copies, as safetensors wants them)."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if ADAPTER_MARKER in k}
