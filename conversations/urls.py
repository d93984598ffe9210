from django.urls import path

from conversations import simulator, views

urlpatterns = [
    # Both spellings are served directly: a redirect would lose the POST body and signature.
    path("sms/", views.sms, name="sms"),
    path("sms", views.sms),
    path("sms/status/", views.sms_status, name="sms_status"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("simulator/", simulator.simulator, name="simulator"),
]
