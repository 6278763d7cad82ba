"""sampler=evolution (regularized evolution as an Optuna sampler): its rule, and that it beats random search
on an objective where the optimum is known (no training: Optuna's in-memory storage)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from effnas.errors import UserError
from nas.samplers import RegularizedEvolutionSampler

CHOICES = ["a", "b", "c", "d"]
TARGET = {f"p{i}": CHOICES[(3 * i) % 4] for i in range(8)}


def objective(trial: optuna.Trial) -> float:
    """How many of 8 four-way choices match a hidden target (the optimum, 8, is one point of 4^8)."""
    return float(sum(trial.suggest_categorical(n, CHOICES) == v for n, v in TARGET.items()))


def run(sampler: optuna.samplers.BaseSampler, trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return study


def test_children_change_one_choice_of_a_recent_member():
    p = 10
    study = run(RegularizedEvolutionSampler(population=p, tournament=3, seed=0), 60)
    trials = study.get_trials()
    for t in trials[p:]:
        members = [u for u in trials if u.number < t.number and u.state == TrialState.COMPLETE][-p:]
        distances = [sum(t.params[n] != u.params[n] for n in TARGET) for u in members]
        assert 1 in distances, (t.number, distances)  # a one-choice mutation of one of the last P


def test_evolution_beats_random_search_on_a_known_optimum():
    seeds = range(8)
    evo = [run(RegularizedEvolutionSampler(10, 3, seed=s), 80).best_value for s in seeds]
    rnd = [run(optuna.samplers.RandomSampler(seed=s), 80).best_value for s in seeds]
    diff = np.array(evo) - np.array(rnd)
    assert diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(len(diff)), (evo, rnd)  # more than 2 standard errors


@pytest.mark.parametrize("population, tournament", [(1, 1), (5, 6), (5, 0)])
def test_bad_settings(population: int, tournament: int):
    with pytest.raises(UserError, match="evolution"):
        RegularizedEvolutionSampler(population, tournament)


def test_minimisation_picks_the_lowest():
    from nas.samplers import best

    study = run(optuna.samplers.RandomSampler(seed=0), 10)
    low = best(study.get_trials(), optuna.study.StudyDirection.MINIMIZE)
    assert low.value == min(t.value for t in study.get_trials())
