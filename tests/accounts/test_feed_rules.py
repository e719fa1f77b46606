"""Which events of the feed each role reads: the resource an event describes, in the role table."""

import dataclasses

import pytest

from accounts.feed_rules import EVENT_RESOURCES, STREAM_RESOURCES, may_read, resource_of
from accounts.roles import ROLES, RULES, can
from eventlog import schema

MONEY_READERS = {"owner", "admin", "finance"}
BILLING_TYPES = sorted(name for name, cls in schema._types.items()
                       if cls.__module__ == "billing.events")
# Field names that carry an amount, a price or a way to pay: an event with one is money.
MONEY_FIELDS = {"amount", "price_per_hour", "value", "checkout_url", "session_id", "reference",
                "payment_intent", "from_frozen", "from_available", "balance"}


def test_every_stream_type_names_a_resource_of_the_role_table():
    for resource in [*STREAM_RESOURCES.values(), *EVENT_RESOURCES.values()]:
        assert "view" in RULES[resource], resource


@pytest.mark.parametrize("event_type", BILLING_TYPES)
@pytest.mark.parametrize("role", ROLES)
def test_wallet_events_are_read_only_by_the_roles_that_read_wallet_and_usage(role, event_type):
    assert may_read(role, "wallet", event_type) == (role in MONEY_READERS)


def test_every_event_type_with_a_money_field_is_hidden_from_developers_and_viewers():
    money_types = [name for name, cls in schema._types.items()
                   if MONEY_FIELDS & {f.name for f in dataclasses.fields(cls)}]
    assert {"FundsDeposited", "UsageCharged", "TopupCreated"} <= set(money_types)
    for name in money_types:
        stream_type = "wallet" if schema._types[name].__module__ == "billing.events" else None
        assert stream_type is not None, f"{name} carries money outside the wallet stream"
        assert not may_read("developer", stream_type, name), name
        assert not may_read("viewer", stream_type, name), name


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("stream_type", ["project", "dataset", "task", "task_template",
                                         "evaluation", "service", "widget"])
def test_other_streams_follow_their_resource(role, stream_type):
    resource = resource_of(stream_type, "Anything")
    assert may_read(role, stream_type, "Anything") == can(role, resource, "view")
    assert may_read(role, stream_type, "Anything")  # every role views these today


def test_an_unknown_role_reads_nothing():
    assert not may_read("nobody", "project", "ProjectCreated")
    assert not may_read("nobody", "wallet", "FundsDeposited")
