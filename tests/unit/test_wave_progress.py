"""A task's current wave as lists show it (protocols.waves.wave_progress), from the store's real rows."""

from __future__ import annotations

from actors.store import Store
from protocols.records import Project, WaveProgress
from protocols.waves import wave_progress


def test_the_current_wave_is_the_last_one_with_a_task_that_ever_started(
    store: Store, project: Project
) -> None:
    task = store.create_task(project.id, "t")
    other = store.create_task(project.id, "plain")
    store.set_wave_tasks(task.id, [(1, 1, "a"), (1, 2, "b"), (2, 3, "c"), (2, 4, "d"), (2, 5, "e")])

    def listed() -> dict[str, WaveProgress | None]:
        return {t.name: t.wave for t in store.list_task_summaries(project.id)}

    assert listed() == {"t": None, "plain": None}  # a plan whose waves have not started
    store.save_wave_tasks(task.id, [(1, "running", 1, "t-W1-T1"), (2, "running", 1, "t-W1-T2")])
    assert listed()["t"] == WaveProgress(wave=1, waves=2, done=0, total=2)
    store.save_wave_tasks(task.id, [(1, "complete", 1, "t-W1-T1"), (2, "failed", 1, "t-W1-T2")])
    assert listed()["t"] == WaveProgress(wave=1, waves=2, done=1, total=2, failed=1)
    store.save_wave_tasks(task.id, [(2, "complete", 2, "t-W1-T2"), (3, "complete", 1, "t-W2-T3")])
    store.save_wave_tasks(task.id, [(4, "failed", 1, "t-W2-T4")])
    assert listed()["t"] == WaveProgress(wave=2, waves=2, done=1, total=3, failed=1)
    assert store.list_task_summaries(project.id, statuses=["ready"])[0].wave is not None
    assert other.name == "plain" and wave_progress([]) is None
