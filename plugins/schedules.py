"""Schedules ``alternating``, ``joint``, ``single_level`` and ``sequence``: which levels train at each optimisation step.

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


#: The default phases of ``sequence``: the three levels in turn for 1000 steps, then the panel level alone.
MULTI_THEN_SINGLE = ({"order": ["M", "P", "R"], "steps": 1000}, {"order": ["P"]})


class Sequence(_Configured):
    """Phases one after another, each alternating through its own ``order`` one level per step (``joint: true``: all
    of them at every step) for ``steps`` steps; the last phase has no ``steps`` and runs to the end.

    ``[{order: [M, P, R], steps: 450}, {order: [P]}]`` is "multi-level, then single-level" training; None gives
    :data:`MULTI_THEN_SINGLE`.
    """

    def __init__(self, phases: list[dict[str, Any]] | None = None) -> None:
        phases = MULTI_THEN_SINGLE if phases is None else phases
        if not phases:
            raise ValueError("sequence schedule: phases is empty")
        self.phases: list[dict[str, Any]] = []
        for i, phase in enumerate(phases):
            extra = set(phase) - {"order", "steps", "joint"}
            if extra:
                raise ValueError(f"sequence schedule: phase {i} has unknown keys {sorted(extra)}; use order, steps, joint")
            order = list(phase.get("order") or [])
            steps = phase.get("steps")
            last = i == len(phases) - 1
            if not order:
                raise ValueError(f"sequence schedule: phase {i} has no order")
            if last and steps is not None:
                raise ValueError(f"sequence schedule: the last phase runs to the end; remove its steps ({steps})")
            if not last and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
                raise ValueError(f"sequence schedule: phase {i} needs steps >= 1, got {steps!r}")
            self.phases.append({"order": order, "steps": steps, "joint": bool(phase.get("joint", False))})

    def levels(self, step: int) -> list[str]:
        start = 0
        for phase in self.phases:
            if phase["steps"] is None or step < start + phase["steps"]:
                break
            start += phase["steps"]
        order = phase["order"]
        return list(order) if phase["joint"] else [order[(step - start) % len(order)]]

    def _config(self) -> dict[str, Any]:
        return {"phases": [dict(p) for p in self.phases]}


@hookimpl
def register_schedules(register):
    register("alternating", Alternating)
    register("joint", Joint)
    register("single_level", Single)
    register("sequence", Sequence)
