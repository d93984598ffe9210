import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template import Context, Engine
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from conversations import health
from conversations.metrics import delivery_reported, exposition
from conversations.models import Message
from conversations.outbox import outbox_report
from conversations.refusals import UNDELIVERABLE, delivery_failed, twilio_error
from conversations.webhook import TextRequest, signed_by_twilio, sms_conversation


@csrf_exempt
@require_http_methods(["GET", "POST"])
@signed_by_twilio
@sms_conversation
def sms(request: TextRequest) -> str:
    """The counter bot: tell the sender how many texts this conversation has had."""
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    context = {"name": request.caller_name, "to": request.text.recipient, "count": count}
    # The words are the template's; rendered by its own engine (whose loader keeps it compiled)
    # with a plain Context: render_to_string's search of every engine and its context wrapper
    # cost a few µs of every text. Plain text: TwiML does the XML escaping.
    template = Engine.get_default().get_template("conversations/reply.txt")
    return template.render(Context(context, autoescape=False)).strip()


@csrf_exempt
@require_POST
@signed_by_twilio
def sms_status(request: HttpRequest) -> HttpResponse:
    """Twilio's delivery reports for the texts the app sent."""
    sid, status = request.POST.get("MessageSid", ""), request.POST.get("MessageStatus", "")
    error = request.POST.get("ErrorCode", "")
    if not sid or not status:
        return HttpResponseBadRequest("Missing MessageSid or MessageStatus.")
    if len(sid) > 64 or "\x00" in sid or not (error == "" or (error.isdigit() and len(error) <= 10)):
        return HttpResponseBadRequest("Malformed MessageSid or ErrorCode.")
    delivery_reported(status)
    if "outbox" in request.GET:  # The callback of a text the outbox sent names its row.
        outbox_report(request.GET["outbox"], sid=sid, status=status)
    Message.objects.filter(sid=sid).advance_status(status, error=twilio_error(int(error)) if error else "")
    if error and int(error) in UNDELIVERABLE:
        delivery_failed(sid, int(error))
    # 204 even for a SID we don't know (another app on the account sent it): nothing to fix there.
    return HttpResponse(status=204)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """200 while texts can be committed; a cache outage is reported, but texts still flow."""
    components = {"database": health.database_state()}
    if (cache := health.cache_state()) is not None:
        components["cache"] = cache
    status = 200 if components["database"] == "ok" else 503
    return JsonResponse({"status": "ok" if status == 200 else "unavailable", **components}, status=status)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' scrape: every process's counts added up, for a scraper with METRICS_TOKEN."""
    if not settings.METRICS_ENABLED:
        raise Http404("Metrics are off (METRICS_ENABLED).")
    if not _bearer_matches(request, settings.METRICS_TOKEN):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # In constant time: how much of a guess was right must not show in the answer's timing.
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), token.encode())
    )
