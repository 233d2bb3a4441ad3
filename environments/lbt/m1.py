"""M1: pick the teaching problem's answer by how well students learn from its rationales.

Top to bottom: draw the teaching problems; the teacher writes a greedy rationale and
samples N more per problem; every sample is scored by the class's exam results (see
:mod:`.teaching`); each selection rule picks an answer from the same samples; the
summary gives each rule's accuracy and, per pair of rules, the per-problem difference
(mean and 95% CI over the problems), all on the same samples.
"""

from __future__ import annotations

import itertools
import time

from classroom.agents.grading import Grader
from classroom.environments.base import Episode
from classroom.environments.lbt.config import LbtConfig
from classroom.environments.lbt.rationale_scores import LbtAgents, teach_and_score
from classroom.environments.lbt.selection import METHODS, select_answers
from classroom.environments.lbt.similar import SimilarProblems
from classroom.environments.lbt.summary import ExamSettings, M1Details, M1Problem, PairwiseDifference
from classroom.environments.replay import Replay
from classroom.environments.result import Counts, EpisodeResult, mean
from classroom.environments.stats import mean_ci


async def run_m1(episode: Episode, agents: LbtAgents, replay: Replay | None = None) -> EpisodeResult[M1Details]:
    started = time.time()
    config: LbtConfig = episode.config
    replay = replay or Replay(())
    problems = episode.task.sample(config.num_problems, split=config.split, seed=config.seed, episode_id=episode.episode_id)
    episode.recorder.record([p for p in problems if p.id not in replay.problem_ids])
    similar = SimilarProblems(episode.task, config.train_split, seed=config.seed)
    teaching = await teach_and_score(
        problems,
        agents,
        similar,
        config.m1,
        seed=config.seed,
        recorder=episode.recorder,
        pool=episode.pool,
        episode_id=episode.episode_id,
        replay=replay,
    )

    # Each rule's answer to each problem, graded.
    right: dict[str, list[bool]] = {method: [] for method in METHODS}
    per_problem = []
    ungradeable = 0
    for problem in problems:
        picked = select_answers(teaching.greedy[problem.id].final_answer, teaching.scored[problem.id])
        # An ungradeable answer (None: its scorer timed out) is not counted right; LbT's
        # accuracies are over every teaching problem, as in the paper.
        graded = {method: await agents.grader.call(Grader.score_one, problem, answer) for method, answer in picked.items()}
        ungradeable += sum(v is None for v in graded.values())
        verdicts = {method: bool(v) for method, v in graded.items()}
        for method in METHODS:
            right[method].append(verdicts[method])
        per_problem.append(M1Problem(problem_id=problem.id, answers=picked, correct=verdicts))
    accuracy = {method: sum(values) / len(values) for method, values in right.items()}
    pairwise = {}
    for a, b in itertools.combinations(METHODS, 2):
        diffs = [float(x) - float(y) for x, y in zip(right[a], right[b])]
        average, ci = mean_ci(diffs)
        pairwise[f"{a}-{b}"] = PairwiseDifference(mean=average, ci95=ci, wins=sum(d > 0 for d in diffs), losses=sum(d < 0 for d in diffs))

    samples = [s for group in teaching.scored.values() for s in group]
    details = M1Details(
        task=episode.task.name,
        episode_id=episode.episode_id,
        students=list(agents.names),
        problems=len(problems),
        samples_per_problem=config.m1.samples,
        exam=ExamSettings(size=config.m1.exam_size, repeats=config.m1.repeats, temperature=config.m1.exam_temperature),
        accuracy=accuracy,
        pairwise=pairwise,
        rationales_correct=sum(s.correct for s in samples) / max(len(samples), 1),
        # Do the LbT scores track correctness? Mean score of right and of wrong rationales.
        lbt_score_of_right=mean([s.score for s in samples if s.correct]),
        lbt_score_of_wrong=mean([s.score for s in samples if not s.correct]),
        exam_engines=teaching.exam_engines,
        per_problem=per_problem,
    )
    scores: dict[str, float | None] = {
        **{f"acc[{method}]": value for method, value in accuracy.items()},
        "m1_sum_minus_sc": pairwise["self_consistency-m1_sum"].mean * -1,
        "m1_max_minus_sc": pairwise["self_consistency-m1_max"].mean * -1,
        "sc_minus_greedy": pairwise["greedy-self_consistency"].mean * -1,
    }
    return EpisodeResult[M1Details](
        scores=scores,
        tokens=teaching.tokens,
        wall_time_s=time.time() - started,
        counts=Counts(failures={"ungradeable": ungradeable} if ungradeable else {}),
        details=details,
    )
