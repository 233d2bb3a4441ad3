"""The distillation loss on the teacher's top-k (issue #28): hand-worked on a two-token
vocabulary, TRL's own loss where k is the whole vocabulary, and the divergence recomputed
with numpy on the renormalised support where k is smaller."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from classroom.agents.distillation import top_k_jsd


def _two_tokens(beta: float) -> float:
    # The student: logits 0, 0 (0.5 / 0.5); the teacher: 0.9 / 0.1, both tokens its top-2.
    student = torch.zeros(1, 1, 2)
    ids = torch.tensor([[[0, 1]]])
    teacher = torch.log(torch.tensor([[[0.9, 0.1]]]))
    return top_k_jsd(student, ids, teacher, torch.ones(1, 1, dtype=torch.bool), beta=beta).item()


def test_two_tokens_worked_by_hand():
    # beta 0, KL(teacher || student): 0.9 ln(0.9/0.5) + 0.1 ln(0.1/0.5) = 0.368064
    assert _two_tokens(0.0) == pytest.approx(0.9 * math.log(1.8) + 0.1 * math.log(0.2), abs=1e-6)
    assert _two_tokens(0.0) == pytest.approx(0.368064, abs=1e-6)
    # beta 1, KL(student || teacher): 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1) = 0.510826
    assert _two_tokens(1.0) == pytest.approx(0.510826, abs=1e-6)
    # beta 0.5: the mixture 0.7 / 0.3; 0.5 KL(t || m) + 0.5 KL(s || m) = 0.5 (0.116322 + 0.087177)
    assert _two_tokens(0.5) == pytest.approx(0.101749, abs=1e-6)


def test_with_the_whole_vocabulary_it_is_trls_loss():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl.experimental.gkd import GKDTrainer

    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    # The teacher's "top-k" in a shuffled order, as log-probabilities: the same distribution.
    order = torch.stack([torch.randperm(7, generator=gen) for _ in range(10)]).view(2, 5, 7)
    logprobs = torch.log_softmax(teacher, -1).gather(-1, order)
    labels = torch.where(mask, 0, -100)
    for beta in (0.0, 0.3, 1.0):
        ours = top_k_jsd(student, order, logprobs, mask, beta=beta, temperature=0.8)
        trl = GKDTrainer.generalized_jsd_loss(student, teacher, labels, beta=beta, temperature=0.8)
        assert ours.item() == pytest.approx(trl.item(), rel=1e-5)


def test_on_a_smaller_top_k_it_is_the_divergence_over_the_top_k_and_the_rest():
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(1, 3, 9, generator=gen)
    ids = torch.tensor([[[4, 0, 7], [1, 2, 3], [8, 5, 6]]])
    # The teacher's top-3 as log-probabilities of its whole distribution: 0.2, 0.1, 0.3 left over.
    logprobs = torch.log(torch.tensor([[[0.5, 0.2, 0.1], [0.3, 0.3, 0.3], [0.6, 0.05, 0.05]]]))
    beta = 0.25
    expected = []
    for t in range(3):  # numpy, position by position, four outcomes: the three and the rest
        full = np.exp(student[0, t].numpy().astype(np.float64))
        full /= full.sum()
        s = np.append(full[ids[0, t].numpy()], 1 - full[ids[0, t].numpy()].sum())
        q = np.exp(logprobs[0, t].numpy().astype(np.float64))
        q = np.append(q, 1 - q.sum())
        m = beta * q + (1 - beta) * s
        expected.append(beta * np.sum(q * np.log(q / m)) + (1 - beta) * np.sum(s * np.log(s / m)))
    ours = top_k_jsd(student, ids, logprobs, torch.ones(1, 3, dtype=torch.bool), beta=beta)
    assert ours.item() == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_mass_off_the_teachers_top_k_counts_against_the_student():
    """A student that matches the teacher's top-2 in proportion but puts most of its mass
    on a token the teacher never named is far from it (renormalising on the top-k alone
    called the two equal, and a student trained so learnt to repeat such a token)."""
    ids, teacher = torch.tensor([[[0, 1]]]), torch.log(torch.tensor([[[0.6, 0.3]]]))
    mask = torch.ones(1, 1, dtype=torch.bool)
    close = torch.log(torch.tensor([[[0.6, 0.3, 0.1]]]))
    escaped = torch.log(torch.tensor([[[0.06, 0.03, 0.91]]]))  # the same 2 : 1 on the top-2
    assert top_k_jsd(close, ids, teacher, mask, beta=0.0).item() == pytest.approx(0.0, abs=1e-6)
    # KL over (top-1, top-2, rest): 0.6 ln 10 + 0.3 ln 10 + 0.1 ln(0.1 / 0.91) = 1.851500
    assert top_k_jsd(escaped, ids, teacher, mask, beta=0.0).item() == pytest.approx(1.851500, abs=1e-5)
    with pytest.raises(ValueError, match="temperature other than 1"):
        top_k_jsd(close, ids, teacher, mask, temperature=0.7)


def test_masked_positions_do_not_count_and_the_gradient_reaches_the_student():
    student = torch.zeros(1, 2, 2, requires_grad=True)
    ids = torch.tensor([[[0, 1], [0, 1]]])
    teacher = torch.log(torch.tensor([[[0.9, 0.1], [0.1, 0.9]]]))
    loss = top_k_jsd(student, ids, teacher, torch.tensor([[True, False]]), beta=0.0)
    assert loss.item() == pytest.approx(0.368064, abs=1e-6)  # the first position alone
    loss.backward()
    # d KL(t || softmax(z)) / dz = softmax(z) - t: (0.5 - 0.9, 0.5 - 0.1) at the first position, 0 at the masked one
    assert student.grad[0, 0].tolist() == pytest.approx([-0.4, 0.4], abs=1e-6)
    assert student.grad[0, 1].tolist() == [0.0, 0.0]


def test_bad_settings_and_shapes_say_what_is_wrong():
    student, ids, lp, mask = torch.zeros(1, 2, 3), torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2), torch.ones(1, 2)
    with pytest.raises(ValueError, match="beta must be in"):
        top_k_jsd(student, ids, lp, mask, beta=1.5)
    with pytest.raises(ValueError, match="does not match the student's positions"):
        top_k_jsd(student, ids[:, :1], lp[:, :1], mask)


def test_a_row_whose_teacher_scored_other_positions_is_refused():
    from pydantic import ValidationError

    from classroom.agents.distillation import DistillRow
    from classroom.serving.types import TopLogprobs

    teacher = TopLogprobs(token_ids=((1, 2),), logprobs=((-0.1, -2.0),), model="t")
    assert DistillRow(prompt_ids=(5,), completion_ids=(1,), teacher=teacher).teacher == teacher
    with pytest.raises(ValidationError, match="cover 1 positions of a 2-token completion"):
        DistillRow(prompt_ids=(5,), completion_ids=(1, 2), teacher=teacher)
