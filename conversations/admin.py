from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from phonenumber_field.phonenumber import to_python

from conversations.models import Caller


@admin.register(Caller)
class CallerAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "name", "blocked", "updated_at")
    list_filter = ("blocked",)
    search_fields = ("name", "phone_number")
    readonly_fields = ("created_at", "updated_at")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Caller], search_term: str
    ) -> tuple[QuerySet[Caller], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Staff type numbers the way people write them: "(415) 555-2222" finds +14155552222.
        number = to_python(search_term)
        if number and number.is_valid():
            queryset |= self.model.objects.filter(phone_number=number)
        return queryset, may_have_duplicates
