"""The money filters of the pages: `{{ amount|rupiah }}`, `{{ movement|rupiah_signed }}`."""

from django import template

from zerotp import money

register = template.Library()
register.filter("rupiah", money.rupiah)
register.filter("rupiah_signed", money.rupiah_signed)
