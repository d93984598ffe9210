from django.urls import path

from conversations import simulator, views
from conversations.admin.dashboard_view import dashboard_page

urlpatterns = [
    # Both spellings are served directly: a redirect would lose the POST body and signature.
    path("sms/", views.sms, name="sms"),
    path("sms", views.sms),
    path("sms/status/", views.sms_status, name="sms_status"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("simulator/", simulator.simulator, name="simulator"),
    # An admin page (behind admin.site.admin_view), matched before admin.site.urls, which
    # smsproject/urls.py includes after these.
    path("admin/dashboard/", dashboard_page, name="dashboard"),
]
