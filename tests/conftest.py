"""Shared fixtures: a clean plugin manager per test and a way to add test plugins."""

from __future__ import annotations

import pytest

from panel2patch import manager


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Every test starts from an unbuilt plugin manager and no plugin environment variables."""
    for name in (manager.ENV_BLOCK, manager.ENV_NO_AUTOLOAD, manager.ENV_TRACE):
        monkeypatch.delenv(name, raising=False)
    manager.reset()
    yield
    manager.reset()


@pytest.fixture(autouse=True)
def one_mining_worker(monkeypatch):
    """``panel2patch mine`` in the test process uses one worker by default (worker processes would not see the
    plugins tests register); tests of workers ask for them with ``--workers``."""
    monkeypatch.setattr("panel2patch.plugins.mine_workers.available_cores", lambda: 1)


@pytest.fixture
def add_plugin():
    """Register an extra plugin object before registries are collected: ``add_plugin(obj, name)``."""

    def add(plugin: object, name: str) -> object:
        manager.plugin_manager().register(plugin, name=name)
        return plugin

    return add
