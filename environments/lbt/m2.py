"""M2: the teacher learns from its own rationales, ordered by how well students learned.

Top to bottom: M1 scores the teacher's sampled rationales of training problems (the
`correctness` baseline samples and grades the same rationales but skips the exams);
each rationale's score is w x correctness + (1 - w) x LbT score (correctness alone
for the `correctness` baseline); pairs of rationales whose scores differ by more than
a gap become DPO preference pairs (saved as ``preferences.jsonl`` in TRL's format,
loadable with ``datasets``); a DPO step trains a LoRA adapter on them, hot-loaded into
the teacher's running engine; the teacher answers held-out problems greedily before
and after (both logged). `none` is the baseline: no pairs, no DPO.
"""

from __future__ import annotations

import json
import time
from typing import Any

from classroom.agents.grading import Grader
from classroom.agents.learners import DPOLearner
from classroom.agents.messages import PreferencePair, TrainingRun
from classroom.agents.roles import Teacher
from classroom.environments.base import Episode, role_learner
from classroom.environments.lbt.config import LbtConfig
from classroom.environments.lbt.rationale_scores import LbtAgents, teach_and_score
from classroom.environments.lbt.selection import preference_pairs
from classroom.environments.lbt.similar import SimilarProblems
from classroom.environments.lbt.summary import M2Details
from classroom.environments.replay import Replay
from classroom.environments.result import Counts, EpisodeResult, mean, tokens_by_sender
from classroom.serving.llm import AdapterLLM

PREFERENCES = "preferences.jsonl"


async def run_m2(episode: Episode, agents: LbtAgents, replay: Replay | None = None) -> EpisodeResult[M2Details]:
    started = time.time()
    config: LbtConfig = episode.config
    settings = config.m2
    replay = replay or Replay(())
    train = episode.task.sample(settings.train_problems, split=config.train_split, seed=config.seed, episode_id=episode.episode_id)
    test = episode.task.sample(config.num_problems, split=config.split, seed=config.seed, episode_id=episode.episode_id)
    episode.recorder.record([p for p in [*train, *test] if p.id not in replay.problem_ids])
    # Built first: a teacher no engine serves stops the episode here, not after its exams.
    learner = None
    if settings.preference != "none":
        learner = role_learner("env.m2.dpo", settings.dpo, DPOLearner, role="teacher", base_models=episode.base_models)

    # 1. The teacher's rationales of training problems, scored by the class (M1).
    pairs: list[PreferencePair] = []
    teaching = None
    if settings.preference != "none":
        similar = SimilarProblems(episode.task, config.train_split, seed=config.seed)
        teaching = await teach_and_score(
            train,
            agents,
            similar,
            config.m1,
            seed=config.seed,
            recorder=episode.recorder,
            pool=episode.pool,
            episode_id=episode.episode_id,
            # Correctness-only pairs read no LbT score: the same samples, no exams.
            exams=settings.preference == "lbt",
            replay=replay,
        )
        # 2. Scores order pairs; the widest gaps become preferences.
        weight = 1.0 if settings.preference == "correctness" else settings.correctness_weight
        prompts = await agents.teacher.call(Teacher.prompts_of, train)
        for problem, prompt in zip(train, prompts):
            samples = teaching.scored[problem.id]

            def score(index: int, samples: Any = samples) -> float:
                return weight * float(samples[index].correct) + (1.0 - weight) * samples[index].score

            for pair in preference_pairs(
                samples, correctness_weight=weight, min_gap=settings.min_gap, max_pairs=settings.max_pairs_per_problem
            ):
                chosen, rejected = samples[pair.chosen].explanation, samples[pair.rejected].explanation
                pairs.append(
                    PreferencePair(
                        episode_id=episode.episode_id,
                        sender="lbt",
                        parents=(problem.id, chosen.id, rejected.id),
                        prompt=tuple(prompt),
                        chosen=chosen.text,
                        rejected=rejected.text,
                        chosen_score=score(pair.chosen),
                        rejected_score=score(pair.rejected),
                        source=settings.preference,
                    )
                )
        logged = replay.of_kind(PreferencePair)  # made at once from the scores, logged at once
        if logged:
            pairs = logged
        else:
            episode.recorder.record(pairs)
        with open(episode.run_dir / PREFERENCES, "w", encoding="utf-8") as f:
            for pair in pairs:
                f.write(json.dumps(pair.row()) + "\n")

    # 3. A DPO step on the pairs, the adapter served by the running engine; logged as a
    # TrainingRun, which a resume takes (with its adapter's files) instead of training again.
    adapter = None
    training: dict[str, Any] = {}
    if pairs and learner is not None:
        llm = episode.pool.llm("teacher")
        if not isinstance(llm, AdapterLLM):
            raise ValueError("M2 trains the teacher: its model must load LoRA adapters (a vLLM engine)")
        adapter = f"{episode.episode_id}-teacher-dpo"
        out_dir = episode.run_dir / "teacher-dpo"
        [*_, done] = [None, *(r for r in replay.of_kind(TrainingRun) if r.adapter == adapter)]
        if done is not None and (out_dir / "adapter_config.json").is_file():
            training = {"adapter_path": str(out_dir), "train_loss": done.train_loss, "seconds": done.seconds}
        else:
            episode.recorder.stage(f"DPO on {len(pairs)} preference pairs", None)
            training = await learner.fit([p.row() for p in pairs], str(out_dir))
        await llm.load_adapter(adapter, training["adapter_path"])
        if done is None:
            run = TrainingRun(
                episode_id=episode.episode_id,
                sender="teacher",
                iteration=1,
                learner=type(learner).__name__,
                examples=len(pairs),
                adapter=adapter,
                adapter_path=training["adapter_path"],
                train_loss=training.get("train_loss"),
                seconds=round(float(training.get("seconds", 0.0)), 2),
            )
            episode.recorder.record([run])

    # 4. The teacher on held-out problems, before and after.
    episode.recorder.stage("teacher on held-out problems, before and after", 2 * len(test))
    # Both logged, before then after (a resume takes them from the log): the after-DPO
    # explanations carry the adapter in usage.model.
    before = replay.explanations(test, 0)
    if before is None:
        before = await agents.teacher.call(Teacher.explain, test)
        episode.recorder.record(before)
    after = before
    if adapter is not None:
        after = replay.explanations(test, 1)
        if after is None:
            after = await agents.teacher.call(Teacher.explain, test, adapter=adapter)
            episode.recorder.record(after)
    # An ungradeable answer (None: its scorer failed or ran out of time) is neither right
    # nor wrong: left out of the accuracy and counted.
    verdicts_before = [await agents.grader.call(Grader.score_one, p, e.final_answer) for p, e in zip(test, before)]
    verdicts_after = [await agents.grader.call(Grader.score_one, p, e.final_answer) for p, e in zip(test, after)]
    accuracy_before = mean([v for v in verdicts_before if v is not None])
    accuracy_after = mean([v for v in verdicts_after if v is not None])
    ungradeable = {"before": verdicts_before.count(None), "after": verdicts_after.count(None)}
    tokens = dict(teaching.tokens) if teaching else {}
    tokens_by_sender([*before, *(after if adapter else [])], into=tokens)
    details = M2Details(
        task=episode.task.name,
        episode_id=episode.episode_id,
        students=list(agents.names),
        preference=settings.preference,
        train_problems=len(train),
        test_problems=len(test),
        pairs=len(pairs),
        preferences_file=PREFERENCES if pairs else None,
        training={k: training[k] for k in ("train_loss", "seconds", "steps") if k in training},
        teacher_accuracy_before=accuracy_before,
        teacher_accuracy_after=accuracy_after,
        ungradeable=ungradeable,
        exam_engines=teaching.exam_engines if teaching else {},
    )
    scores: dict[str, float | None] = {
        "teacher_test": accuracy_after,
        "teacher_test_before": accuracy_before,
        "teacher_gain": None if accuracy_after is None or accuracy_before is None else accuracy_after - accuracy_before,
        "pairs": float(len(pairs)),
    }
    unscored = sum(ungradeable.values())
    return EpisodeResult[M2Details](
        scores=scores,
        tokens=tokens,
        wall_time_s=time.time() - started,
        counts=Counts(failures={"ungradeable": unscored} if unscored else {}),
        details=details,
    )
