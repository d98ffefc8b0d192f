"""Every long job keeps one contract (explain.jobs): callback(progress) with step/total/phase/metrics/history,
should_stop, and a result that says whether it was stopped."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from explain.adversarial import AttackSettings, attack_images
from explain.classify import class_rank
from explain.jobs import Progress, ProgressLog, stop_requested
from explain.synthesis import IdealSettings, class_target, ideal_image, result_so_far
from explain.transfer import TrainConfig, demo_dataset, epoch_history, split_dataset, train_model


def test_progress_log_keeps_history_only_when_asked():
    seen: list[Progress] = []
    log = ProgressLog(4, seen.append)
    log.report(1, "a", {"loss": 2.0})
    log.report(2, "a", {"loss": 1.0, "lr": 0.1}, keep=False)
    log.report(3, "b", {"loss": 0.5}, total=6)
    assert [p.step for p in seen] == [1, 2, 3] and seen[-1].total == 6 and seen[-1].phase == "b"
    assert seen[-1].history["loss"] == (2.0, 0.5) and "lr" not in seen[-1].history
    assert seen[1].metrics["lr"] == 0.1 and seen[0].history["loss"] == (2.0,)  # earlier reports are not changed later
    assert seen[-1].fraction == pytest.approx(0.5) and Progress(3, 0).fraction == 0.0
    with pytest.raises(TypeError):
        seen[-1].metrics["loss"] = 9  # read-only views


def test_stop_signals():
    event = threading.Event()
    assert not stop_requested(None) and not stop_requested(event) and stop_requested(lambda: True)
    event.set()
    assert stop_requested(event)


def test_attack_reports_every_step_of_every_batch(lite0, chelsea):
    images = [chelsea, chelsea[::-1].copy(), chelsea[:, ::-1].copy()]
    seen: list[Progress] = []
    run = attack_images(lite0, images, AttackSettings(steps=3), target=207, batch_size=2, callback=seen.append)
    assert not run.stopped and len(run) == 3
    steps = [p.step for p in seen]
    assert steps == sorted(set(steps)) and steps[0] == 0 and all(p.total == 2 * 3 for p in seen)  # step 0: the photo as it is
    assert {p.phase for p in seen} == {"batch 1/2", "batch 2/2"}
    assert len(seen[-1].history["goal_prob"]) == len(seen) and all(0 <= v <= 1 for v in seen[-1].history["goal_prob"])


def test_a_stopped_attack_still_judges_every_photo(lite0, chelsea):
    run = attack_images(lite0, [chelsea, chelsea], AttackSettings(steps=5), target=207, should_stop=lambda: True)
    assert run.stopped and len(run) == 2
    assert all(r.after and r.steps_used == 0 and r.linf == 0 for r in run)  # stopped before the first step: unchanged


def test_a_training_run_ended_mid_way_keeps_its_time(lite0):
    from explain.transfer import Trainer

    class Click(BaseException):  # what a click's rerun raises inside a running page
        pass

    def click_after_two_epochs(progress: Progress) -> None:
        if progress.phase == "epoch" and progress.metrics["epoch"] == 2:
            raise Click

    trainer = Trainer(lite0, split_dataset(demo_dataset("textures", per_class=8, size=96)), TrainConfig("extract", epochs=20, batch_size=8))
    with pytest.raises(Click):
        trainer.train(click_after_two_epochs)
    result = trainer.result()
    assert result.stopped and len(result.history) == 2 and result.seconds == result.history[-1].seconds > 0


def test_training_reports_epochs_as_history(lite0):
    splits = split_dataset(demo_dataset("textures", per_class=8, size=96))
    seen: list[Progress] = []
    result = train_model(lite0, splits, TrainConfig("extract", epochs=3, batch_size=8), callback=seen.append)
    phases = [p.phase for p in seen]
    assert phases[0] == "features" and phases.count("epoch") == 3 and "train" in phases
    last_epoch = [p for p in seen if p.phase == "epoch"][-1]
    assert not result.stopped
    assert {k: list(v) for k, v in last_epoch.history.items()} == epoch_history(result.history)
    assert all(p.history == {} for p in seen if p.phase == "features")  # caching reports progress, not metrics


def test_an_interrupted_ideal_image_is_judged_like_a_finished_one(lite0):
    seen: list[Progress] = []
    target = class_target(lite0, "goldfish")
    settings = IdealSettings(method="pixels", steps=4, size=64)
    done = ideal_image(lite0, target, settings, callback=seen.append)
    cut = result_so_far(lite0, target, settings, seen[1])
    assert cut.stopped and cut.steps_done == 2 and len(cut.history["prob"]) == 2
    assert np.array_equal(cut.image, seen[1].preview)
    rank, prob = class_rank(lite0, np.asarray(cut.image), target.index)
    assert cut.prob is not None and cut.rank is not None and not done.stopped
    # the same image judged by the same network: same probability as a finished run's own judgement would give
    again = result_so_far(lite0, target, settings, seen[-1])
    assert again.prob == pytest.approx(done.prob, abs=1e-6) and again.rank == done.rank
