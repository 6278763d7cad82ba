"""`sampler=rl`: MnasNet's search strategy, an RNN controller trained with PPO, as an Optuna sampler.

The controller (Zoph et al. 2018, NASNet; Tan et al. 2019, MnasNet) is a one-layer LSTM (`rl.hidden`
units) that emits one softmax per choice of the space, in the space's order (s1_op, s1_kernel, ...),
each step fed the embedding of the previous step's choice. It is trained with PPO's clipped objective
(`rl.clip`, `rl.ppo_epochs` passes of Adam at `rl.lr` per update) plus an entropy bonus
(`rl.entropy_weight`), on the advantage reward - baseline, the baseline an exponential moving average
of the rewards (`rl.baseline_decay`). NASNet's settings are the defaults: lr 3.5e-4, entropy weight
1e-5, baseline decay 0.95.

Rebuilt from the storage, never saved: each trial stores, when it is created, the log-probability of its
choices under the controller of that moment (a trial attribute, `rl:logp`; PPO's "old" policy). An
update uses the next `rl.update_every` completed trials, in trial-number order, among the trials before
the first one still running, so which trials form an update does not depend on timing. A resumed run, a
worker process or a Ray searcher starts from the seeded initial controller and replays the same updates
on the same stored trials, reaching the same controller; each trial's draw is seeded by the run's seed
and its number. So a run stopped after n trials and resumed proposes what an uninterrupted run would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from effnas.errors import UserError
from nas.config import RLConfig
from search_spaces import SearchSpace

LOGP = "rl:logp"
"""The trial attribute with the log-probability of its choices when it was created."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Controller(nn.Module):
    """One LSTM layer over the choices in order; step t's softmax picks choice t, whose embedding is step
    t+1's input (step 0: a learned start vector). The softmax heads of all steps are one linear layer
    whose outputs are split by step, so scoring known choices is one LSTM pass (PPO's updates)."""

    def __init__(self, cardinalities: Sequence[int], hidden: int) -> None:
        super().__init__()
        cards = list(cardinalities)
        self.offsets = [sum(cards[:t]) for t in range(len(cards))]
        self.segments = [slice(o, o + c) for o, c in zip(self.offsets, cards)]
        self.start = nn.Parameter(torch.zeros(1, 1, hidden))
        self.embed = nn.Embedding(sum(cards), hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, sum(cards))
        # step t's own choices: `keep` 1 there, 0 elsewhere; `mask` 0 there, a large negative elsewhere (added
        # to the logits; finite: -inf would make the masked gradients NaN)
        keep = torch.zeros(len(cards), sum(cards))
        for t, seg in enumerate(self.segments):
            keep[t, seg] = 1.0
        self.register_buffer("keep", keep)
        self.register_buffer("mask", (1 - keep) * -1e9)
        self.register_buffer("token_offsets", torch.tensor(self.offsets))

    def numpy_weights(self) -> dict[str, np.ndarray]:
        """A float64 copy of the weights for `sample` (valid until the next update), with each token's input
        projection precomputed: `proj[k]` = W_ih @ embed[k] + both biases, `proj0` the same for the start."""
        w = {k: v.detach().double().numpy() for k, v in self.state_dict().items()}
        w_ih, bias = w["lstm.weight_ih_l0"], w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]
        w["proj"] = w["embed.weight"] @ w_ih.T + bias
        w["proj0"] = w_ih @ w["start"][0, 0] + bias
        return w

    def sample(self, rng: np.random.Generator, w: dict[str, np.ndarray]) -> tuple[list[int], float]:
        """Draw one sequence of choice indices step by step, with its log-probability. In numpy on a copy
        of the weights (`numpy_weights`): a step is one matrix-vector product (the input's is precomputed),
        where torch's per-call overhead would make the draw ten times slower."""
        w_hh, proj, head_w, head_b = w["lstm.weight_hh_l0"], w["proj"], w["head.weight"], w["head.bias"]
        n = len(w_hh) // 4
        z, h, c = w["proj0"], np.zeros(n), np.zeros(n)
        picked, logp = [], 0.0
        for t, seg in enumerate(self.segments):
            gates = z + w_hh @ h  # torch's gate order: i, f, g, o
            s = _sigmoid(gates)
            c = s[n : 2 * n] * c + s[:n] * np.tanh(gates[2 * n : 3 * n])
            h = s[3 * n :] * np.tanh(c)
            logits = head_w[seg] @ h + head_b[seg]
            e = np.exp(logits - logits.max())
            cdf = np.cumsum(e)
            a = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(e) - 1)
            picked.append(a)
            logp += float(np.log(e[a] / cdf[-1]))
            z = proj[a + self.offsets[t]]
        return picked, logp

    def score(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed log-probabilities of a batch of sequences (B x T indices) and summed entropies of their
        steps' softmaxes, in one pass (teacher forcing: step t's input is the embedding of choice t-1)."""
        tokens = actions + cast(torch.Tensor, self.token_offsets)
        x = torch.cat([self.start.expand(len(actions), -1, -1), self.embed(tokens[:, :-1])], 1)
        h, _ = self.lstm(x)
        log_probs = torch.log_softmax(self.head(h) + cast(torch.Tensor, self.mask), -1)  # step t: its choices only
        logp = log_probs.gather(2, tokens[..., None]).squeeze(2).sum(1)
        # exp() of the masked entries clamped: of -1e9 it is a slow path on the CPU (10x the rest of the pass)
        entropy = -(log_probs.clamp(min=-80).exp() * log_probs * cast(torch.Tensor, self.keep)).sum((1, 2))
        return logp, entropy


class ControllerSampler(BaseSampler):
    """MnasNet's RL controller over the space's categorical choices (single objective)."""

    def __init__(self, names: Sequence[str], choices: Sequence[Sequence[Any]], config: RLConfig = RLConfig(),
                 seed: int = 0) -> None:  # fmt: skip
        if len(names) != len(choices) or not names:
            raise ValueError("one list of choices per name, at least one name")
        self.names, self.choices = list(names), [list(c) for c in choices]
        self.config, self.seed = config, int(seed)
        self._random = RandomSampler(seed=seed)
        self._reset()

    def _reset(self) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._net = Controller([len(c) for c in self.choices], self.config.hidden)
        # fused: one kernel for all parameters, a quarter of the update's time (bench/sampler_cost.py)
        self._opt = torch.optim.Adam(self._net.parameters(), lr=self.config.lr, fused=True)
        self._applied: list[int] = []  # trial numbers already used by updates, in order
        self._baseline: float | None = None
        self._weights: dict[str, np.ndarray] | None = None  # the controller's, for draws; None after an update

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles the sampler: the controller is rebuilt from storage
        state = self.__dict__.copy()
        for k in ("_net", "_opt", "_applied", "_baseline", "_weights"):
            state.pop(k)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    # ---- Optuna's sampler interface ------------------------------------------------------------
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {n: CategoricalDistribution(c) for n, c in zip(self.names, self.choices)}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """An enqueued trial (the base, a retry) takes its fixed choices without asking `sample_relative`:
        store their log-probability here, so that its reward trains the controller too."""
        fixed = trial.system_attrs.get("fixed_params") or {}
        if all(n in fixed for n in self.names):
            self._propose(study, trial, fixed)

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
                        ) -> dict[str, Any]:  # fmt: skip
        return self._propose(study, trial, None)

    def _propose(self, study: Study, trial: FrozenTrial, fixed: dict[str, Any] | None) -> dict[str, Any]:
        """Bring the controller up to date; draw choices (or score the fixed ones); store their log-probability."""
        if len(study.directions) != 1:
            raise UserError("sampler=rl optimises one objective; use objective=reward")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: threads cost more than they give (bench/sampler_cost.py)
        try:
            self._catch_up(study)
            with torch.no_grad():
                if fixed is not None:
                    logp = float(self._net.score(torch.tensor([self._indices(fixed, trial.number)]))[0][0])
                    params: dict[str, Any] = {}
                else:
                    if self._weights is None:
                        self._weights = self._net.numpy_weights()
                    picked, logp = self._net.sample(np.random.default_rng([self.seed, trial.number]), self._weights)
                    params = {n: c[i] for n, c, i in zip(self.names, self.choices, picked)}
        finally:
            torch.set_num_threads(threads)
        study._storage.set_trial_system_attr(trial._trial_id, LOGP, logp)  # as Optuna's own samplers do
        return params

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:  # fmt: skip
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    # ---- the controller's updates, replayed from the storage ----------------------------------
    def _indices(self, params: dict[str, Any], number: int) -> list[int]:
        try:
            return [c.index(params[n]) for n, c in zip(self.names, self.choices)]
        except (KeyError, ValueError):
            raise UserError(f"trial {number}'s choices are not a point of the controller's space (the space "
                            "changed since the run started?); start a new run directory") from None  # fmt: skip

    def _catch_up(self, study: Study) -> None:
        """Apply every update whose trials are all known (finished, before the first unfinished trial)."""
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        settled = []
        for t in trials:
            if t.state not in FINISHED:
                break
            if t.state == TrialState.COMPLETE and LOGP in t.system_attrs and t.value is not None:
                settled.append(t)
        if [t.number for t in settled[: len(self._applied)]] != self._applied:
            self._reset()  # the storage is not the one replayed so far (another study): start over
        m = self.config.update_every
        sign = 1.0 if study.direction == StudyDirection.MAXIMIZE else -1.0
        while len(settled) - len(self._applied) >= m:
            group = settled[len(self._applied) : len(self._applied) + m]
            self._update(group, sign)
            self._weights = None
            self._applied += [t.number for t in group]

    def _update(self, group: list[FrozenTrial], sign: float) -> None:
        cfg = self.config
        advantages = []
        for t in group:
            r = sign * float(t.value)  # type: ignore[arg-type]
            b = r if self._baseline is None else self._baseline
            advantages.append(r - b)
            self._baseline = cfg.baseline_decay * b + (1 - cfg.baseline_decay) * r
        actions = torch.tensor([self._indices(t.params, t.number) for t in group])
        old = torch.tensor([float(t.system_attrs[LOGP]) for t in group])
        adv = torch.tensor(advantages)
        for _ in range(cfg.ppo_epochs):
            logp, entropy = self._net.score(actions)
            ratio = torch.exp(logp - old)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
            loss = -surrogate.mean() - cfg.entropy_weight * entropy.mean()
            self._opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            self._opt.step()


def for_space(space: SearchSpace, config: RLConfig, seed: int) -> ControllerSampler:
    """The sampler over a SearchSpace's choices, in its order."""
    names = space.param_names()
    return ControllerSampler(names, [list(space.choices[n.split("_", 1)[1]]) for n in names], config, seed)
