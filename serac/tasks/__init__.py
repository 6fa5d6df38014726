"""The task registry that training and evaluation share: one :class:`TaskSpec` per edit task.

Below both in the layers (``serac/layers.py``): training and evaluation ask the registry,
never each other, for what differs between tasks.
"""

from serac.tasks.registry import MIXABLE, TASK_SPECS, by_task, mixture_name, spec_of, task_of, task_spec
from serac.tasks.spec import JudgeSpec, TaskContext, TaskSpec

__all__ = ["MIXABLE", "TASK_SPECS", "by_task", "mixture_name", "JudgeSpec", "TaskContext", "TaskSpec", "spec_of", "task_of", "task_spec"]
