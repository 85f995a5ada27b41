"""The champion models the service scores with, and how they are swapped.

Contract: the serving layer reaches models only through
``models.champion.load_champion`` (the MLflow registry alias
``models:/<name>@champion``) and the protocol :class:`models.champion.ChampionLike`,
the part of that interface serving relies on. :class:`ChampionSet` holds one champion per
outcome. :meth:`ChampionSet.reload` loads *all* new champions first and then
swaps the whole mapping in one assignment: a request that already took a
champion keeps using it until it finishes, new requests get the new one, and
nothing is dropped. A failed reload leaves the old champions serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from features.config import OUTCOMES
from features.contract import local_now
from models.champion import ChampionLike

Loader = Callable[[str], ChampionLike]


class ModelsNotReady(RuntimeError):
    """No champion is loaded for an outcome."""


def registry_loader(tracking_uri: str) -> Loader:
    """Load champions from the MLflow registry at ``tracking_uri``."""

    def load(outcome: str) -> ChampionLike:
        from models.champion import load_champion

        return load_champion(outcome, tracking_uri=tracking_uri)

    return load


@dataclass(frozen=True)
class Loaded:
    champions: Mapping[str, ChampionLike]
    loaded_at: datetime
    errors: Mapping[str, str]


class ChampionSet:
    """One champion per outcome, swapped atomically by :meth:`reload`."""

    def __init__(self, loader: Loader, outcomes: tuple[str, ...] = OUTCOMES) -> None:
        self._loader = loader
        self._outcomes = outcomes
        self._lock = threading.Lock()
        self.current = Loaded({}, local_now(), dict.fromkeys(outcomes, "not loaded yet"))

    def reload(self) -> Loaded:
        """Load every outcome's champion, then swap; keep old ones for failed outcomes."""
        with self._lock:
            fresh: dict[str, ChampionLike] = {}
            errors: dict[str, str] = {}
            for outcome in self._outcomes:
                try:
                    fresh[outcome] = self._loader(outcome)
                except Exception as exc:  # a missing champion must not stop the service
                    errors[outcome] = f"{type(exc).__name__}: {exc}"[:500]
                    if outcome in self.current.champions:
                        fresh[outcome] = self.current.champions[outcome]
            self.current = Loaded(fresh, local_now(), errors)
            return self.current

    def get(self, outcome: str) -> ChampionLike:
        """The champion for ``outcome`` (raises :class:`ModelsNotReady`)."""
        champion = self.current.champions.get(outcome)
        if champion is None:
            reason = self.current.errors.get(outcome, "not loaded")
            raise ModelsNotReady(f"no champion model for {outcome}: {reason}")
        return champion

    @property
    def ready(self) -> bool:
        return all(o in self.current.champions for o in self._outcomes)

    def info(self) -> list[dict[str, Any]]:
        """What is loaded, per outcome (for /models and /readyz)."""
        out = []
        for outcome in self._outcomes:
            c = self.current.champions.get(outcome)
            out.append(
                {
                    "outcome": outcome,
                    "loaded": c is not None,
                    "model_name": getattr(c, "model_name", None),
                    "version": str(getattr(c, "version", "")) or None,
                    "trained_at": str(getattr(c, "trained_at", "")) or None,
                    "n_features": len(c.feature_names) if c is not None else None,
                    "metrics": dict(getattr(c, "metrics", {}) or {}),
                    "loaded_at": self.current.loaded_at,
                    "error": self.current.errors.get(outcome),
                }
            )
        return out
