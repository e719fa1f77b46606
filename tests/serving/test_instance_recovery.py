"""A service whose instance died (issue 16 item 8): predictions answer 503 at once instead of
waiting for a reply that cannot come; the watchdog finds the silent instance by its heartbeat and
starts it again, or, past the restarts a service may have, fails the service with the reason and
bills it up to the instance's last heartbeat."""

from datetime import datetime, timedelta

import dramatiq
import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import Meter
from core import leases, lifecycle, recovery
from core.models import WorkLease
from eventlog.models import Event
from serving import commands
from serving.instance import lease_key
from serving.models import Service, ServiceInstance
from serving.recovery import recover_instances
from tests.serving.conftest import png, service_state, wait_for, wait_state
from tests.serving.test_services import predict, publish
from tests.workers import stub_worker

pytestmark = pytest.mark.django_db(transaction=True)


def died_serving(service: dict, silent_for_s: float) -> datetime:
    """The service's instance 0 started and became ready on a worker that then died: its
    heartbeat stopped `silent_for_s` ago. Its message is gone with the dead worker."""
    row = Service.objects.unscoped().get(id=service["id"])
    dramatiq.get_broker().flush_all()
    commands.instance_started(row.tenant_id, row.id, 0, "dead-host:1")
    commands.instance_ready(row.tenant_id, row.id, 0, str(row.model_id))
    last_beat = timezone.now() - timedelta(seconds=silent_for_s)
    leases.claim(lease_key(row.id, 0), "dead-host:1:0", stale_after_s=1)
    WorkLease.objects.filter(key=lease_key(row.id, 0)).update(last_seen_at=last_beat)
    return last_beat


def sweep_lost(**options) -> int:
    """The lease sweep (core.lifecycle) of service instances; how many it started again."""
    return lifecycle.sweep(**options)["service_instance"]


def events_of(service_id: str) -> list[tuple[str, dict]]:
    return [(e.type, e.data) for e in Event.objects.filter(stream_id=service_id)
            .order_by("version")]


def rows(service_id: str) -> list[dict]:
    return [*Service.objects.unscoped().filter(id=service_id).values(),
            *ServiceInstance.objects.unscoped().filter(service_id=service_id)
            .order_by("id").values()]


def test_a_dead_instance_is_answered_503_at_once_then_started_again(
        api, funded, classifier, cpu_spec, settings):
    settings.SERVING_INSTANCE_TIMEOUT_S = 5.0
    settings.SERVING_REQUEST_TIMEOUT_S = 2.0  # what a wait for the dead instance would take
    service = publish(api, funded, classifier, cpu_spec)
    died_serving(service, silent_for_s=30)
    assert Service.objects.unscoped().get(id=service["id"]).state == "running"

    refused = predict(api.as_(funded), service["id"], png(1))

    assert refused.status_code == 503, refused.content
    assert refused.json()["error"]["code"] == "unavailable"
    # said at once, not after waiting out SERVING_REQUEST_TIMEOUT_S for a reply
    assert "No instance of the service is alive" in refused.json()["error"]["message"]
    assert refused["Retry-After"] == "5"

    with stub_worker(threads=2):
        assert sweep_lost() == 1

        def answered() -> bool:  # 503 at once until the restarted instance beats, then 200
            response = predict(api.as_(funded), service["id"], png(1))
            assert response.status_code in (200, 503), response.content
            return response.status_code == 200

        wait_for(answered, timeout=60, every=0.05, what="the restarted instance to answer")
        types = [(t, d.get("reason")) for t, d in events_of(service["id"])]
        assert ("ServiceInstanceExited", "lost") in types
        assert [t for t, _ in types].count("ServiceInstanceStarted") == 2
        # a second pass finds the new instance alive and leaves it alone
        assert sweep_lost() == 0
        assert recover_instances(recovery.Sweep()) == 0  # nor is it missing
        commands.request_stop(funded.tenant_id, service["id"], "user", "system:test")
        wait_state(api, funded, service["id"], "stopped")

    before = rows(service["id"])
    call_command("rebuild_projections", "serving.services")
    assert rows(service["id"]) == before


def test_past_its_restarts_the_service_fails_with_the_reason_billed_to_the_last_heartbeat(
        api, funded, classifier, cpu_spec, settings):
    settings.SERVING_INSTANCE_TIMEOUT_S = 5.0
    settings.SERVING_INSTANCE_MAX_RESTARTS = 0
    service = publish(api, funded, classifier, cpu_spec)
    last_beat = died_serving(service, silent_for_s=30)

    assert sweep_lost() == 0

    body = service_state(api, funded, service["id"])
    assert (body["state"], body["failure"]["code"]) == ("failed", "instance_lost"), body
    assert "stopped answering" in body["failure"]["message"]
    meter = Meter.objects.for_tenant(funded.tenant_id).get(resource_id=service["id"])
    assert (meter.state, meter.stop_reason, meter.frozen) == ("stopped", "failed", 0)
    assert meter.stopped_at == last_beat
    refused = predict(api.as_(funded), service["id"], png(1))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "service_not_running"


def test_an_instance_nobody_started_is_sent_again_once_its_message_may_be_lost(
        api, funded, classifier, cpu_spec, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    service = publish(api, funded, classifier, cpu_spec)
    dramatiq.get_broker().flush_all()  # the deploying service's message died with its broker

    assert recover_instances(recovery.Sweep()) == 0  # sent a moment ago: it may still come
    later = recovery.Sweep(now=timezone.now() + timedelta(seconds=61))
    assert recover_instances(later) == 1
    assert recover_instances(later) == 0  # not again until RECOVERY_REQUEUE_AFTER_S passes
    [message] = list(dramatiq.get_broker().queues["serving"].queue)
    assert dramatiq.Message.decode(message).args == (service["id"], 0)


def test_make_run_starting_again_takes_none_of_the_services_restarts(
        api, funded, classifier, cpu_spec, settings):
    settings.SERVING_INSTANCE_MAX_RESTARTS = 0
    service = publish(api, funded, classifier, cpu_spec)
    died_serving(service, silent_for_s=1)  # it beat a moment before the process was killed

    dramatiq.get_broker().flush_all()
    assert recovery.sweep(lost_all=True)["lost service_instance"] == 1

    sent = [dramatiq.Message.decode(m).args
            for m in dramatiq.get_broker().queues["serving"].queue]
    assert sent == [(service["id"], 0)]  # once: the recoverer leaves a lost one to the sweep

    assert Service.objects.unscoped().get(id=service["id"]).state == "running"
    exits = [d["reason"] for t, d in events_of(service["id"]) if t == "ServiceInstanceExited"]
    assert exits == ["process_restarted"]
