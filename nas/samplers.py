"""Search strategies beyond Optuna's own, as Optuna samplers (so they work with workers=k, executor=ray and
resume): `sampler=evolution`, regularized (aging) evolution (Real et al., AAAI 2019), and `sampler=local`,
local search (first-improvement hill climbing over one-choice neighbours).

Regularized evolution keeps a population of the P most recently evaluated architectures (older ones
age out, however good); each new architecture is a child of the best of S members drawn at random
(the tournament), with exactly one choice changed to another value. Until P trials have completed it
samples at random. Its whole state is the study's completed trials in the order they were created, so
a resumed run, a worker process and a Ray searcher each rebuild it from the storage.

Local search proposes a not yet tried neighbour (one choice changed) of the best completed trial, so
it moves to a better neighbour as soon as one is found. When every neighbour of the best has been
tried (a local optimum) it goes on from the best trial whose neighbourhood is not exhausted (rather
than from a random point, which would not become the focus unless it beat the best); when every
neighbourhood is exhausted it samples at random. Also stateless: "tried" is every trial in the study,
running ones included, so workers rarely propose the same neighbour twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, cast

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from effnas.errors import UserError
from nas.config import EvolutionConfig


class _ChoiceSampler(BaseSampler):
    """What both samplers share: a seeded rng, the search space of the completed trials (sampled
    relative), Optuna's random sampler for every parameter outside it, one objective only."""

    name = ""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)
        self._space = optuna.search_space.IntersectionSearchSpace()  # incremental: only new trials are read

    def reseed_rng(self) -> None:
        self._rng = random.Random()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._space.calculate(study)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _check_single(self, study: Study) -> None:
        if len(study.directions) != 1:
            raise UserError(f"sampler={self.name} optimises one objective; use objective=reward")


class RegularizedEvolutionSampler(_ChoiceSampler):
    """Aging evolution over categorical choices (single objective)."""

    name = "evolution"

    def __init__(self, population: int = 20, tournament: int = 5, seed: int | None = None) -> None:
        EvolutionConfig(population, tournament)  # the same checks as the config's
        super().__init__(seed)
        self.population, self.tournament = population, tournament

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
                        ) -> dict[str, Any]:  # fmt: skip
        self._check_single(study)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not search_space or len(done) < self.population:
            return {}  # the random start: every parameter from sample_independent
        members = sorted(done, key=lambda t: t.number)[-self.population :]
        parent = best(self._rng.sample(members, self.tournament), study.direction)
        return mutate(parent.params, search_space, self._rng)


def best(trials: Sequence[FrozenTrial], direction: StudyDirection) -> FrozenTrial:
    """The tournament's winner (the first of equals)."""
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    return max(trials, key=lambda t: sign * cast(float, t.value))


def mutate(params: dict[str, Any], space: dict[str, BaseDistribution], rng: random.Random) -> dict[str, Any]:
    """A copy of `params` with one categorical choice (that has another value) changed to another value."""
    names = [n for n, d in space.items() if isinstance(d, CategoricalDistribution) and len(d.choices) > 1]
    child = {n: params[n] for n in space}
    if not names:
        return child
    name = rng.choice(names)
    dist = space[name]
    assert isinstance(dist, CategoricalDistribution)
    child[name] = rng.choice([c for c in dist.choices if c != params[name]])
    return child


class LocalSearchSampler(_ChoiceSampler):
    """First-improvement local search over categorical choices (single objective)."""

    name = "local"

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
                        ) -> dict[str, Any]:  # fmt: skip
        self._check_single(study)
        if not search_space:
            return {}
        names = sorted(search_space)
        tried = {tuple(t.params[n] for n in names) for t in study.get_trials(deepcopy=False)
                 if all(n in t.params for n in names)}  # fmt: skip
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                      key=lambda t: (-sign * cast(float, t.value), t.number))  # fmt: skip
        for t in done:
            fresh = [n for n in neighbours(t.params, search_space) if tuple(n[k] for k in names) not in tried]
            if fresh:
                return self._rng.choice(fresh)
        return {}


def neighbours(params: dict[str, Any], space: dict[str, BaseDistribution]) -> list[dict[str, Any]]:
    """Every point of `space` that differs from `params` in exactly one categorical choice."""
    base = {n: params[n] for n in space}
    out = []
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            out += [{**base, name: c} for c in dist.choices if c != base[name]]
    return out
