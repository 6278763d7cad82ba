"""Search strategies beyond Optuna's own, as Optuna samplers (so they work with workers=k, executor=ray and
resume): `sampler=evolution`, regularized (aging) evolution (Real et al., AAAI 2019).

Regularized evolution keeps a population of the P most recently evaluated architectures (older ones
age out, however good); each new architecture is a child of the best of S members drawn at random
(the tournament), with exactly one choice changed to another value. Until P trials have completed it
samples at random. Its whole state is the study's completed trials in the order they were created, so
a resumed run, a worker process and a Ray searcher each rebuild it from the storage.
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


class RegularizedEvolutionSampler(BaseSampler):
    """Aging evolution over categorical choices (single objective)."""

    def __init__(self, population: int = 20, tournament: int = 5, seed: int | None = None) -> None:
        EvolutionConfig(population, tournament)  # the same checks as the config's
        self.population, self.tournament = population, tournament
        self._rng = random.Random(seed)
        self._random = RandomSampler(seed=seed)

    def reseed_rng(self) -> None:
        self._rng = random.Random()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return optuna.search_space.intersection_search_space(done)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
                        ) -> dict[str, Any]:  # fmt: skip
        if len(study.directions) != 1:
            raise UserError("sampler=evolution optimises one objective; use objective=reward")
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not search_space or len(done) < self.population:
            return {}  # the random start: every parameter from sample_independent
        members = sorted(done, key=lambda t: t.number)[-self.population :]
        parent = best(self._rng.sample(members, self.tournament), study.direction)
        return mutate(parent.params, search_space, self._rng)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        return self._random.sample_independent(study, trial, param_name, param_distribution)


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
