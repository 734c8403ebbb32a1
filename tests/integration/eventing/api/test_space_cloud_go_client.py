"""The exact requests Space Cloud's Go client (spaceuptech/space-api-go) sends to queue an
event, replayed against the Space Cloud endpoint: each is accepted with the documented due time.

The client, at commit ca55d307f9c51369ad5129ec9297e89df86140b4:
- transport/eventing.go `generateEventingURL`: POST `<scheme>://<addr>/v1/api/<project>/eventing/queue`.
- transport/helpers.go `makeHTTPRequest`: headers `Authorization: "Bearer " + token` (so
  `Bearer ` with nothing after it when no token was set) and `Content-Type: application/json`;
  a 2xx is success, anything else an error.
- eventing/eventing.go `event`: marshalled by encoding/json in field order, no `omitempty`:
  `type`, `delay` (0 unless `.Delay(n)`; the gateway reads it as milliseconds:
  gateway/modules/eventing/helpers.go), `timestamp` ("" unless `.TimeStamp(t)`, then
  `t.Format(time.RFC3339)`), `payload`, `options` (null unless `.Options(m)`), `isSynchronous`.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing.models import EventLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_fixtures import make_token

PATH = "/v1/api/default/eventing/queue"
NO_TOKEN = {"HTTP_AUTHORIZATION": "Bearer "}  # api.New(...) without api.SetToken(...)

# api.QueueEvent("order_placed", map[string]interface{}{"order_id": 42, "note": "gift"}).Apply(ctx)
PLAIN = (
    '{"type":"order_placed","delay":0,"timestamp":"","payload":{"note":"gift","order_id":42},'
    '"options":null,"isSynchronous":false}'
)
# … .Delay(1500).Apply(ctx)
DELAYED = (
    '{"type":"order_placed","delay":1500,"timestamp":"","payload":{"order_id":43},'
    '"options":null,"isSynchronous":false}'
)
# … .TimeStamp(at).Options(map[string]string{"source": "shop"}).Apply(ctx); {at} is
# at.Format(time.RFC3339): seconds, and Z or a numeric offset.
SCHEDULED = (
    '{{"type":"order_placed","delay":0,"timestamp":"{at}","payload":{{"order_id":44}},'
    '"options":{{"source":"shop"}},"isSynchronous":false}}'
)


def send(client, body: str, **headers):
    """POST `body` as the Go client does: its bytes, its content type, its headers."""
    return client.generic("POST", PATH, body, content_type="application/json", **headers)


def accepted_due(response) -> dt.datetime:
    """The due time of the one event a 2xx reply queued (the Go client's success rule)."""
    assert 200 <= response.status_code < 300, response.content
    return EventLog.objects.get().deliver_at


@pytest.fixture
def order_placed():
    EventTypeFactory(name="order_placed", queue_rule="allow")
    TriggerFactory(name="orders_hook", type="order_placed")


@pytest.mark.django_db
class TestGoClientRequests:
    def test_plain_event_with_no_token_is_due_now(self, client, order_placed):
        before = timezone.now()
        due = accepted_due(send(client, PLAIN, **NO_TOKEN))
        assert before <= due <= timezone.now()
        assert EventLog.objects.get().payload == {"note": "gift", "order_id": 42}

    def test_delay_is_milliseconds_from_now(self, client, order_placed):
        before = timezone.now()
        due = accepted_due(send(client, DELAYED, **NO_TOKEN))
        after = timezone.now()
        delay = dt.timedelta(milliseconds=1500)
        assert before + delay <= due <= after + delay

    @pytest.mark.parametrize("offset", ["Z", "+05:30"])
    def test_timestamp_is_the_due_time(self, client, order_placed, offset):
        zone = dt.UTC if offset == "Z" else dt.timezone(dt.timedelta(hours=5, minutes=30))
        at = (timezone.now() + dt.timedelta(hours=2)).astimezone(zone).replace(microsecond=0)
        text = at.strftime("%Y-%m-%dT%H:%M:%S") + (offset if offset == "Z" else "+05:30")
        due = accepted_due(send(client, SCHEDULED.format(at=text), **NO_TOKEN))
        assert due == at

    def test_token_set_with_set_token_counts_as_authenticated(self, client):
        # api.SetToken(token) with a token the project's client secret signed.
        EventTypeFactory(name="order_placed", queue_rule="authenticated")
        TriggerFactory(name="orders_hook", type="order_placed")
        assert send(client, PLAIN, **NO_TOKEN).status_code == 401
        token = make_token({"id": "end-user-7"})
        before = timezone.now()
        due = accepted_due(send(client, PLAIN, HTTP_AUTHORIZATION=f"Bearer {token}"))
        assert before <= due <= timezone.now()
