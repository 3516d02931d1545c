from django.apps import AppConfig
from django.utils.translation import gettext_noop

# django-q2 ships no Indonesian: the names its admin lists, here for makemessages to collect
# and locale/id to translate (Django reads LOCALE_PATHS before an app's own catalogues).
JOB_QUEUE_NAMES = (
    gettext_noop("Successful task"),
    gettext_noop("Successful tasks"),
    gettext_noop("Failed task"),
    gettext_noop("Failed tasks"),
    gettext_noop("Scheduled task"),
    gettext_noop("Scheduled tasks"),
    gettext_noop("Queued task"),
    gettext_noop("Queued tasks"),
)


class ZeroTPConfig(AppConfig):
    """The project package as an app: a place to connect the job log to django-q2."""

    name = "zerotp"
    verbose_name = "ZeroTP"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from zerotp.logs import job_finished, job_started

        pre_execute.connect(job_started, dispatch_uid="zerotp.logs.job_started")
        post_execute_in_worker.connect(job_finished, dispatch_uid="zerotp.logs.job_finished")
