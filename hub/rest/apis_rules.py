"""``GET/PUT /api/notifications/rules``: the caller's own notification rules (issue 15,
``hub.notify.notification_rules``). There is no road to anyone else's: the rule is the
authenticated user's, never named in the URL or body. PUT changes only the fields given;
a kind left out of ``channels`` keeps its value (defaults included)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response

from hub.notify import notification_rules as rules
from hub.rest.apis import HubAPIView, errors
from hub.rest.apis_errors import FieldError

_CHANNEL_LISTS = serializers.DictField(
    child=serializers.ListField(child=serializers.ChoiceField(choices=rules.CHANNELS)),
    help_text=f"kind ({', '.join(rules.KINDS)}) -> channels; `page` is always on")


class RulesUpdateSerializer(serializers.Serializer):
    channels = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=rules.CHANNELS)),
        required=False, help_text=_CHANNEL_LISTS.help_text)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254,
                                   help_text="where e-mail goes; blank: the account's address")
    webhook_url = serializers.CharField(required=False, allow_blank=True,
                                        max_length=rules.WEBHOOK_URL_MAX_LENGTH,
                                        help_text="http(s) incoming webhook (Slack/Teams/Mattermost); blank: none")


class RulesSerializer(serializers.Serializer):
    channels = serializers.DictField(
        child=serializers.ListField(child=serializers.ChoiceField(choices=rules.CHANNELS)),
        help_text="each kind's channels, defaults filled in")
    email = serializers.CharField(allow_blank=True)
    effective_email = serializers.CharField(allow_blank=True, help_text="where e-mail actually goes")
    webhook_url = serializers.CharField(allow_blank=True)
    customised = serializers.BooleanField(help_text="false: the defaults, nothing stored")
    kinds = serializers.ListField(child=serializers.CharField())
    available_channels = serializers.ListField(child=serializers.CharField())


class NotificationRulesView(HubAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: RulesSerializer, **errors(401, 503)},
                   summary="Your notification rules (what you are told, and where)",
                   operation_id="notification_rules_get")
    def get(self, request):
        return Response(rules.rules_dict(request.user))

    @extend_schema(request=RulesUpdateSerializer,
                   responses={200: RulesSerializer, **errors(400, 401, 413, 415, 503)},
                   summary="Change your notification rules", operation_id="notification_rules_put")
    def put(self, request):
        body = RulesUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            channels = rules.clean_channels(data["channels"]) if "channels" in data else None
            webhook = rules.clean_webhook_url(data["webhook_url"]) if "webhook_url" in data else None
        except rules.RuleError as exc:
            raise FieldError(exc.field, exc.message) from None
        return Response(rules.save_rules(request.user, channels=channels, email=data.get("email"),
                                         webhook_url=webhook))
