from django import template
from django.templatetags.static import static
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString

from conversations.segments import charset

register = template.Library()


@register.simple_tag
def segment_counter() -> SafeString:
    """The GSM-7 tables for segments.js, from conversations/segments.py, and the script that
    counts every textarea marked data-segments as it is typed."""
    return format_html(
        '{}<script src="{}" defer></script>',
        json_script(charset(), "gsm-charset"),
        static("conversations/segments.js"),
    )
