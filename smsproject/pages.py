"""The site's own pages: a landing page at / and its icon."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

# A speech bubble; browsers take an SVG icon at /favicon.ico when it says what it is.
FAVICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">\
<path fill="#417690" d="M4 4h24a2 2 0 0 1 2 2v15a2 2 0 0 1-2 2H13l-7 6v-6H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/>\
<path fill="#fff" d="M8 11h16v2H8zm0 5h11v2H8z"/></svg>
"""


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Where the admin's "View site" link lands: what this is and where to go."""
    return render(request, "home.html")


@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FAVICON_SVG, content_type="image/svg+xml")
