from django.contrib import admin
from django.urls import include, path

from smsproject import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("favicon.ico", pages.favicon),
    path("", include("conversations.urls")),
    path("admin/", admin.site.urls),
]
