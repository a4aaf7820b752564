"""REST input validation and output shapes (PROTOCOL.md section 6). Output serializers
mirror exactly what the views return, so the OpenAPI schema is the contract schemathesis
checks the responses against."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from hub.notify.notifications import SEVERITIES
from hub.socket.protocol import CONTROL_TYPES, DEFAULT_EVENT

CHANNEL_PATTERN = r"^[A-Za-z0-9_.:\-]{1,100}$"
EVENT_PATTERN = r"^[A-Za-z0-9_.:\-]{1,100}$"
# Any username Django's UnicodeUsernameValidator allows (``user:<username>`` takes them all,
# PROTOCOL.md §4): unicode word characters and ``.@+-``, AbstractUser's 150 at most.
USERNAME_PATTERN = r"^[\w.@+\-]{1,150}$"
MAX_PAGE = 500


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON body's boolean: ``true`` or ``false`` only. DRF's BooleanField also takes 0, 1,
    0.0, "yes", "off"... (made for form and query strings), which the schema says is not a
    boolean: such a body is refused with a 400 naming the field (found by schemathesis:
    ``"cluster_wide": 0.0`` was accepted)."""

    default_error_messages = {"not_a_boolean": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("not_a_boolean")
        return data


class StrictRegexField(serializers.RegexField, StrictCharField):
    default_error_messages = {**serializers.RegexField.default_error_messages,
                              **StrictCharField.default_error_messages}


# --- errors --------------------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable error code")
    message = serializers.CharField(help_text="what is wrong, naming the field when there is one")
    # Wire name `fields`: DRF's metaclass pops declared fields, so Serializer.fields still works.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="validation errors by dotted field path")


# --- broadcast -----------------------------------------------------------------------------

class MessageSerializer(serializers.Serializer):
    type = StrictRegexField(EVENT_PATTERN, max_length=100, required=False, default=DEFAULT_EVENT,
                                  help_text="the event name; not a control type")
    # Wire name `data`: DRF's metaclass pops declared fields, so Serializer.data still works.
    data = serializers.JSONField(required=False, allow_null=True, default=None)  # type: ignore[assignment]

    def validate_type(self, value: str) -> str:
        if value in CONTROL_TYPES:
            raise serializers.ValidationError(f"{value!r} is a reserved control type")
        return value


class BroadcastSerializer(serializers.Serializer):
    channel = StrictRegexField(CHANNEL_PATTERN, max_length=100, required=False,
                                     help_text='a channel name, or "all" for every socket')
    user = StrictRegexField(USERNAME_PATTERN, max_length=150, required=False,
                                  help_text="send to every socket of this user (channel user:<user>)")
    message = MessageSerializer()

    def validate(self, attrs: dict) -> dict:
        if ("channel" in attrs) == ("user" in attrs):
            raise serializers.ValidationError({"channel": ["give exactly one of channel or user"]})
        return attrs


class BroadcastResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    channel = serializers.CharField()
    offset = serializers.IntegerField()


class BroadcastItemResultSerializer(serializers.Serializer):
    """One item's result in a list answer: published (``channel``, ``offset``) or not
    (``code``, ``message``: the engine refused it, or the hub became unavailable)."""

    success = serializers.BooleanField()
    channel = serializers.CharField(required=False)
    offset = serializers.IntegerField(required=False)
    code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)
    # Wire name `fields`: DRF's metaclass pops declared fields, so Serializer.fields still works.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False)


# POST /api/broadcast takes one object or a list of 1 to 1,000 (hub.rest.broadcasting.MAX_ITEMS)
# and answers one result or a list of them, one per item, in order.
BROADCAST_BODY = PolymorphicProxySerializer(
    component_name="BroadcastBody", resource_type_field_name=None, many=False,
    serializers=[BroadcastSerializer, BroadcastSerializer(many=True, max_length=1000, min_length=1)])  # type: ignore[call-arg]
BROADCAST_RESULTS = PolymorphicProxySerializer(
    component_name="BroadcastAnswer", resource_type_field_name=None, many=False,
    serializers=[BroadcastResultSerializer, BroadcastItemResultSerializer(many=True)])


# --- health --------------------------------------------------------------------------------

class StreamAgeSerializer(serializers.Serializer):
    age = serializers.FloatField(help_text="seconds since the stream's last successful poll")
    interval = serializers.FloatField(help_text="seconds between the stream's polls")
    ok = serializers.BooleanField(help_text="whether its latest poll succeeded")


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "degraded"],
                                     help_text="degraded: a Slurm monitor stream is 3 intervals late (see stale)")
    streams = serializers.DictField(child=StreamAgeSerializer(), required=False,
                                    help_text="the Slurm monitor's streams (jobs, nodes, metrics); {} without one")
    stale = serializers.DictField(child=StreamAgeSerializer(), required=False,
                                  help_text="the streams 3 of their intervals late; {} when none")
    clients = serializers.IntegerField()
    subscriptions = serializers.DictField(child=serializers.IntegerField(),
                                          help_text="{channel: count} for staff; {} for everyone else")
    subscriptions_total = serializers.IntegerField(required=False, help_text="subscriptions, all channels")
    active_connections = serializers.IntegerField()
    total_connections = serializers.IntegerField()
    messages_sent = serializers.IntegerField()
    messages_received = serializers.IntegerField()
    # Wire name `errors`: DRF's metaclass pops declared fields, so Serializer.errors still works.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    channels = serializers.IntegerField()
    users_with_connections = serializers.IntegerField()
    dropped_sends = serializers.IntegerField(required=False)
    servers = serializers.IntegerField(required=False, help_text="hub processes reporting")
    timestamp = serializers.DateTimeField()


class UnhealthySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["unhealthy"])
    code = serializers.CharField()
    message = serializers.CharField()
    service = serializers.CharField()
    timestamp = serializers.DateTimeField()


# --- clients and channels ------------------------------------------------------------------

class ClientSerializer(serializers.Serializer):
    client_id = serializers.CharField()
    user = serializers.CharField(allow_null=True)
    channels = serializers.ListField(child=serializers.CharField())
    state = serializers.CharField()
    connected_at = serializers.CharField()
    last_ping = serializers.CharField(allow_null=True)
    last_pong = serializers.CharField(allow_null=True)
    server = serializers.CharField()
    metadata = serializers.DictField()


class ChannelSerializer(serializers.Serializer):
    name = serializers.CharField()
    subscriber_count = serializers.IntegerField()
    subscribers = serializers.ListField(child=serializers.CharField())
    last_offset = serializers.IntegerField()
    epoch = serializers.CharField()


# --- notifications -------------------------------------------------------------------------

class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    user = serializers.CharField(allow_null=True, help_text="the addressee; null: cluster-wide")
    type = serializers.CharField()
    title = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    severity = serializers.ChoiceField(choices=SEVERITIES)
    # Wire name `data`: DRF's metaclass pops declared fields, so Serializer.data still works.
    data = serializers.DictField()  # type: ignore[assignment]
    read = serializers.BooleanField()
    created = serializers.DateTimeField()


class NotificationListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="how many match the filter")
    unread = serializers.IntegerField(help_text="how many of the user's (cluster-wide ones included) are unread")
    results = NotificationSerializer(many=True)


class StrictQuerySerializer(serializers.Serializer):
    """Query parameters: DRF reads an empty ``?offset=`` as absent (the default applies);
    the schema says an integer (or boolean), so an empty value is a 400 naming it."""

    def run_validation(self, data=serializers.empty):
        if hasattr(data, "getlist"):
            empty = [name for name in self.fields if name in data and data.get(name) == ""]
            if empty:
                raise serializers.ValidationError({name: ["must not be empty"] for name in empty})
        return super().run_validation(data)


class NotificationQuerySerializer(StrictQuerySerializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="only unread ones")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**9)


class NotificationCreateSerializer(serializers.Serializer):
    user = StrictCharField(required=False, max_length=150,
                                 help_text="recipient; default yourself (others need hub.broadcast)")
    type = StrictRegexField(EVENT_PATTERN, max_length=100)
    title = StrictCharField(max_length=200)
    message = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)
    severity = serializers.ChoiceField(choices=SEVERITIES, required=False, default="info")
    # Wire name `data`: DRF's metaclass pops declared fields, so Serializer.data still works.
    data = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]
    cluster_wide = StrictBooleanField(
        required=False, default=False,
        help_text="for every user, on the notifications channel (needs hub.broadcast; not with user)")

    def validate(self, attrs: dict) -> dict:
        if attrs.get("cluster_wide") and "user" in attrs:
            raise serializers.ValidationError({"cluster_wide": ["give either user or cluster_wide, not both"]})
        return attrs


class MarkedReadSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="how many notifications became read")
