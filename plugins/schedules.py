"""Schedules ``alternating``, ``joint`` and ``single_level``: which levels train at each optimisation step.

Level names are registered level names (``figure``, ``panel``, ``region``) or their codes (``M``, ``P``,
``R``). A schedule's state is its configuration; resuming with a different one is refused, because the
step count would then mean something else.
"""

from __future__ import annotations

from typing import Any

from panel2patch.components import Schedule
from panel2patch.hookspecs import hookimpl


class _Configured(Schedule):
    def state_dict(self) -> dict[str, Any]:
        return {"schedule": type(self).__name__, **self._config()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = {k: v for k, v in state.items() if k != "schedule"}
        mine = self._config()
        if state.get("schedule") != type(self).__name__ or saved != mine:
            raise ValueError(
                f"the checkpoint was trained with schedule {state.get('schedule')} {saved}, the recipe now "
                f"asks for {type(self).__name__} {mine}; resume with the checkpoint's schedule"
            )

    def _config(self) -> dict[str, Any]:
        return {}


class Alternating(_Configured):
    """One level per step, cycling through ``order``; each phase lasts ``steps_per_phase`` steps."""

    def __init__(self, order: list[str] | None = None, steps_per_phase: int = 1) -> None:
        self.order = list(order) if order is not None else ["M", "P", "R"]
        if not self.order:
            raise ValueError("alternating schedule: order is empty")
        if steps_per_phase < 1:
            raise ValueError(f"alternating schedule: steps_per_phase must be >= 1, got {steps_per_phase}")
        self.steps_per_phase = steps_per_phase

    def levels(self, step: int) -> list[str]:
        return [self.order[(step // self.steps_per_phase) % len(self.order)]]

    def _config(self) -> dict[str, Any]:
        return {"order": self.order, "steps_per_phase": self.steps_per_phase}


class Joint(_Configured):
    """Every level at every step, losses summed; ``levels`` None means all levels of the recipe."""

    def __init__(self, levels: list[str] | None = None) -> None:
        self.chosen = list(levels) if levels is not None else None
        self.available: list[str] = []

    def levels(self, step: int) -> list[str]:
        if self.chosen is not None:
            return list(self.chosen)
        return list(self.available)

    def _config(self) -> dict[str, Any]:
        return {"levels": self.chosen}


class Single(_Configured):
    """Always the same level (ablations)."""

    def __init__(self, level: str = "panel") -> None:
        self.level = level

    def levels(self, step: int) -> list[str]:
        return [self.level]

    def _config(self) -> dict[str, Any]:
        return {"level": self.level}


@hookimpl
def register_schedules(register):
    register("alternating", Alternating)
    register("joint", Joint)
    register("single_level", Single)
