"""The order form of the buyer dashboard."""

import uuid
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from modems.models import Operator
from orders.dashboard import CatalogueEntry


class OrderForm(forms.Form):
    application = forms.TypedChoiceField(coerce=int, label=_("Application"))
    operator = forms.ChoiceField(
        choices=Operator.choices,
        initial=Operator.NORMAL,
        label=_("Operator"),
        widget=forms.RadioSelect,
    )
    # One token per rendered form: a double click or a resubmitted page places one order.
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(self, *args: Any, catalogue: Sequence[CatalogueEntry], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("token", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        application = cast(forms.TypedChoiceField, self.fields["application"])
        application.choices = [(app.id, app.name) for app in catalogue]

    def idempotency_key(self) -> str:
        data = self.cleaned_data
        return f"web:{data['token']}:{data['application']}:{data['operator']}"


class HistoryFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[
            ("", _("All")),
            ("pending", _("Waiting for SMS")),
            ("completed", _("Code received")),
            ("finished", _("Finished")),
            ("cancelled", _("Cancelled")),
            ("expired", _("Expired")),
        ],
    )
