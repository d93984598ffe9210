from django.urls import path

from conversations import views

urlpatterns = [
    # Both spellings are served directly: a redirect would lose the POST body and signature.
    path("sms/", views.sms, name="sms"),
    path("sms", views.sms),
    path("healthz", views.healthz, name="healthz"),
]
