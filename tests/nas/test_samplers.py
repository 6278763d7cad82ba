"""Our samplers (evolution, local search, MnasNet's RL controller) as Optuna samplers: their rules, and that
they find better points than chance on an objective whose optimum is known (no training)."""

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


def test_local_search_tries_an_untried_neighbour_of_the_best():
    from nas.samplers import LocalSearchSampler

    study = run(LocalSearchSampler(seed=0), 60)
    trials = study.get_trials()
    for t in trials[1:]:
        earlier = [u for u in trials if u.number < t.number]
        focus = max((u for u in earlier if u.state == TrialState.COMPLETE), key=lambda u: (u.value, -u.number))
        # one choice away from the best so far (the first completed of equals): with this seed the best's 24
        # neighbours are never all tried within 60 trials, so the rule never hands over to the next best
        assert sum(t.params[n] != focus.params[n] for n in TARGET) == 1, t.number
        assert all(t.params != u.params for u in earlier)  # never a point already tried


def test_local_search_beats_random_search_on_a_known_optimum():
    from nas.samplers import LocalSearchSampler

    seeds = range(8)
    loc = [run(LocalSearchSampler(seed=s), 80).best_value for s in seeds]
    rnd = [run(optuna.samplers.RandomSampler(seed=s), 80).best_value for s in seeds]
    diff = np.array(loc) - np.array(rnd)
    assert diff.mean() > 2 * diff.std(ddof=1) / np.sqrt(len(diff)), (loc, rnd)


def test_neighbours_change_exactly_one_choice():
    from optuna.distributions import CategoricalDistribution

    from nas.samplers import neighbours

    space = {"x": CategoricalDistribution(["a", "b", "c"]), "y": CategoricalDistribution([1, 2]),
             "z": CategoricalDistribution([0])}  # fmt: skip
    got = neighbours({"x": "a", "y": 1, "z": 0}, space)
    assert sorted(map(str, got)) == sorted(map(str, [{"x": "b", "y": 1, "z": 0}, {"x": "c", "y": 1, "z": 0},
                                                     {"x": "a", "y": 2, "z": 0}]))  # fmt: skip


# ---- sampler=rl: MnasNet's controller (nas/rl.py) ---------------------------------------------------------
def rl_sampler(seed: int = 0, **settings: float) -> optuna.samplers.BaseSampler:
    from nas.config import RLConfig
    from nas.rl import ControllerSampler

    return ControllerSampler(list(TARGET), [CHOICES] * len(TARGET), RLConfig(**settings), seed=seed)  # type: ignore[arg-type]


def test_rl_controller_learns_a_known_optimum():
    """NASNet's settings (lr 3.5e-4, PPO every 5 trials): over 150 trials the controller's proposals move
    from chance (2 of 8 choices right) towards the optimum, on every seed."""
    first, last = [], []
    for seed in range(4):
        values = [t.value for t in run(rl_sampler(seed), 150).trials]
        first.append(np.mean(values[:30]))
        last.append(np.mean(values[-30:]))
    gain = np.array(last) - np.array(first)
    assert np.mean(first) == pytest.approx(2.0, abs=0.5)  # sampling from a near-uniform start
    assert gain.min() > 1.0 and gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain)), (first, last)


def test_rl_stored_log_probability_is_the_controllers():
    """Each trial stores log P(its choices) under the controller that proposed it: it matches the
    controller's own scoring, and P summed over every point of a small space is 1 (a distribution)."""
    import itertools

    import torch

    from nas.config import RLConfig
    from nas.rl import LOGP, ControllerSampler

    sampler = ControllerSampler(["x", "y"], [["a", "b", "c"], [1, 2]], RLConfig(), seed=3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(
        lambda t: float(t.suggest_categorical("x", ["a", "b", "c"]) == "b") + t.suggest_categorical("y", [1, 2]),
        n_trials=3,
    )  # fmt: skip  (fewer than an update: one controller throughout)
    net = sampler._net
    with torch.no_grad():
        every, _ = net.score(torch.tensor(list(itertools.product(range(3), range(2)))))
        assert float(every.exp().sum()) == pytest.approx(1.0, abs=1e-5)
        for t in study.trials:
            idx = torch.tensor([[["a", "b", "c"].index(t.params["x"]), [1, 2].index(t.params["y"])]])
            assert t.system_attrs[LOGP] == pytest.approx(float(net.score(idx)[0][0]), abs=1e-5)


def test_rl_resumed_run_proposes_what_an_uninterrupted_run_does(tmp_path):
    """The controller lives in the storage: a second process (a new sampler, or the first one pickled, as
    Ray's searcher is) that continues a journal after 7 trials proposes what one uninterrupted run did."""
    import pickle

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from nas.rl import LOGP

    settings = {"update_every": 3, "lr": 0.01}
    whole = run(rl_sampler(5, **settings), 14).trials

    def storage() -> JournalStorage:
        return JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))

    first = rl_sampler(5, **settings)
    optuna.create_study(study_name="s", storage=storage(), direction="maximize", sampler=first).optimize(objective, 7)
    study = optuna.load_study(study_name="s", storage=storage(), sampler=rl_sampler(5, **settings))  # a new process
    study.optimize(objective, n_trials=7)
    assert [t.params for t in study.trials] == [t.params for t in whole]
    assert [t.system_attrs[LOGP] for t in study.trials] == pytest.approx([t.system_attrs[LOGP] for t in whole])
    # Ray's searcher: the first sampler pickled (its controller is dropped and rebuilt from the 14 trials)
    study = optuna.load_study(study_name="s", storage=storage(), sampler=pickle.loads(pickle.dumps(first)))
    study.optimize(objective, n_trials=1)
    assert study.trials[14].params == run(rl_sampler(5, **settings), 15).trials[14].params


def test_rl_bad_settings():
    from nas.config import RLConfig

    for bad in ({"clip": 1.5}, {"update_every": 0}, {"baseline_decay": 1.0}, {"lr": 0.0}, {"hidden": 0}):
        with pytest.raises(UserError, match=f"rl.{next(iter(bad))}"):
            RLConfig(**bad)  # type: ignore[arg-type]
