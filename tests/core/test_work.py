"""Work sent by actor name (core.work): commands queue jobs without importing the workers."""

import dramatiq
import pytest
from django.db import transaction

from core import context
from core.actors import discover
from core.work import Work
from datasets.commands import VALIDATE
from evaluation.commands import RUN
from serving.commands import RUN_INSTANCE
from tasks.commands import TRAIN

PROBE = Work("core_work_probe", "core-work-probe")  # no actor anywhere declares it


def queued(queue_name: str) -> list[dramatiq.Message]:
    queue = dramatiq.get_broker().queues.get(queue_name)  # declared by the first send
    return [] if queue is None else [dramatiq.Message.decode(m) for m in queue.queue]


def test_work_is_sent_by_name_to_its_queue_with_the_senders_metadata():
    dramatiq.get_broker().flush_all()
    with context.scope(correlation_id="corr-w", actor="user:1"):
        PROBE.send("a", 2, flag=True)

    [message] = queued("core-work-probe")
    assert (message.actor_name, message.args, message.kwargs) == (
        "core_work_probe", ("a", 2), {"flag": True})
    assert message.options["metadata"]["correlation_id"] == "corr-w"


@pytest.mark.django_db(transaction=True)
def test_work_sent_on_commit_waits_for_the_commit_and_is_lost_with_a_rollback():
    dramatiq.get_broker().flush_all()
    with transaction.atomic():
        PROBE.send_on_commit("kept")
        assert queued("core-work-probe") == []
    with pytest.raises(RuntimeError), transaction.atomic():
        PROBE.send_on_commit("rolled back")
        raise RuntimeError

    assert [m.args for m in queued("core-work-probe")] == [("kept",)]


@pytest.mark.parametrize("work", [TRAIN, RUN["cpu"], RUN["gpu"], RUN_INSTANCE, VALIDATE],
                         ids=lambda work: work.actor_name)
def test_every_work_a_command_names_is_an_actor_of_the_worker_on_the_same_queue(work):
    discover()  # what a worker process imports

    actor = dramatiq.get_broker().get_actor(work.actor_name)
    assert actor.queue_name == work.queue_name
