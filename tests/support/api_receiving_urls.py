"""URLconf of the receiving tests: the API plus the example webhook view of docs/receiving.md."""

from django.urls import include, path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from eventing.api.receiving import WebhookAuthentication
from triggers.models import Trigger


class SignedWebhookAuthentication(WebhookAuthentication):
    """Also checks the signature, with the secret of the trigger named in the request."""

    def get_signing_secret(self, request):
        name = request.headers.get("X-Eventing-Trigger", "")
        trigger = Trigger.objects.filter(name=name).first()
        return trigger.signing_secret if trigger else "whsec_" + "A" * 32


class OrderPlacedHook(APIView):
    """The example receiver: verify the caller, use the event, answer JSON."""

    authentication_classes = [SignedWebhookAuthentication]
    permission_classes = [IsAuthenticated]

    def post(self, request):
        event = request.data  # the CloudEvents envelope
        return Response(
            {
                "received": event["id"],
                "order_id": event["data"]["order_id"],
                "sender": request.user.instance_id,
            }
        )


urlpatterns = [
    path("hooks/order-placed/", OrderPlacedHook.as_view()),
    path("", include("eventing.api.urls")),
]
