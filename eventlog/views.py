"""GET /api/v1/events/: the tenant's events in log order, for catch-up and resync.

Each caller reads only the events their role may read (accounts.feed_rules): money events are
left out for roles that cannot read the wallet or usage. They are left out in the query, so a
page is as full as without them and `next_after` stays the last event returned.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import hidden_events
from eventlog.records import read_log


class EventOut(serializers.Serializer):
    position = serializers.IntegerField(help_text="Place in the tenant's log; resume after it.")
    stream_type = serializers.CharField()
    stream_id = serializers.CharField()
    version = serializers.IntegerField(help_text="The event's number in its stream.")
    type = serializers.CharField()
    data = serializers.DictField(help_text="The event's fields, by type.")
    recorded_at = serializers.DateTimeField()


class EventPageOut(serializers.Serializer):
    results = EventOut(many=True)
    next_after = serializers.IntegerField(help_text="Read on with ?after= this.")


class EventFeedQuery(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    stream_type = serializers.CharField(max_length=64, required=False)
    stream_id = serializers.CharField(max_length=64, required=False)


class EventFeedView(APIView):
    """Every tenant member may read the tenant's feed (the default permission), minus the events
    of resources their role may not read."""

    @extend_schema(
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="Position to read after."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many (1–1000)."),
            OpenApiParameter("stream_type", OpenApiTypes.STR),
            OpenApiParameter("stream_id", OpenApiTypes.STR),
        ],
        description="The tenant's events in log order. Events of resources the caller's role "
                    "may not read are left out (the wallet stream's money events for developers "
                    "and viewers); `next_after` is the position of the last event returned, or "
                    "`after` when none is left to read.",
        responses={200: EventPageOut},
    )
    def get(self, request: Request) -> Response:
        query = EventFeedQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        events = read_log(after=params["after"], limit=params["limit"],
                          tenant_id=request.auth.tenant_id,
                          stream_type=params.get("stream_type"), stream_id=params.get("stream_id"),
                          exclude=hidden_events(request.auth.role))
        return Response({
            "results": [event.as_public() for event in events],
            "next_after": events[-1].position if events else params["after"],
        })
