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


# And the names of its fields, their help texts and choices, and its admin's columns and
# action (django_q/models.py and admin.py mark them all for translation).
JOB_QUEUE_FIELDS = (
    gettext_noop("32-character task identifier."),
    gettext_noop("Arguments"),
    gettext_noop("Attempt count"),
    gettext_noop("Bimonthly"),
    gettext_noop("Biweekly"),
    gettext_noop("Cluster key"),
    gettext_noop("Cluster"),
    gettext_noop("Cron expression"),
    gettext_noop("Cron"),
    gettext_noop("Daily"),
    gettext_noop("Dotted import path to the callable, e.g. myapp.tasks.job."),
    gettext_noop("False if the task raised an exception or timed out."),
    gettext_noop("Function"),
    gettext_noop("Group"),
    gettext_noop("Hook"),
    gettext_noop("Hourly"),
    gettext_noop("How many times execution was attempted."),
    gettext_noop("How often this task should be enqueued."),
    gettext_noop("Id of the last task spawned from this schedule (read-only)."),
    gettext_noop("Intended date kwarg"),
    gettext_noop("Keyword arguments"),
    gettext_noop("Last task id"),
    gettext_noop("Lock until"),
    gettext_noop("Minutes"),
    gettext_noop("Monthly"),
    gettext_noop("Name of kwarg to pass intended schedule date"),
    gettext_noop("Name of the cluster that executed this task."),
    gettext_noop("Name of the target cluster"),
    gettext_noop("Name"),
    gettext_noop("Next Run"),
    gettext_noop("Number of minutes for the Minutes type"),
    gettext_noop("Once"),
    gettext_noop("Optional group id to aggregate related tasks."),
    gettext_noop("Optional human-readable name for lookup and display."),
    gettext_noop("Optional label to identify this schedule in the admin."),
    gettext_noop("Payload"),
    gettext_noop("Pickled keyword arguments (dict)."),
    gettext_noop("Pickled positional arguments (tuple)."),
    gettext_noop("Pickled return value or error payload."),
    gettext_noop("Please install croniter to enable cron expressions"),
    gettext_noop("Prevent any cluster from pulling until"),
    gettext_noop("Quarterly"),
    gettext_noop("Queue options"),
    gettext_noop("Repeats"),
    gettext_noop("Resubmit selected tasks to queue"),
    gettext_noop("Result"),
    gettext_noop("Schedule Type"),
    gettext_noop("Short result"),
    gettext_noop("Signed serialized task package (do not edit manually)."),
    gettext_noop("Started at"),
    gettext_noop("Stopped at"),
    gettext_noop("Success"),
    gettext_noop("Task id"),
    gettext_noop("Task"),
    gettext_noop("Tasks"),
    gettext_noop("Time Taken"),
    gettext_noop("Weekly"),
    gettext_noop("When the worker finished (success or failure)."),
    gettext_noop("When the worker started executing the task."),
    gettext_noop("When this schedule runs next (stored in UTC)."),
    gettext_noop("Yearly"),
    gettext_noop("e.g. 1, 2, 'John'"),
    gettext_noop("e.g. module.tasks.function"),
    gettext_noop("e.g. module.tasks.result_function"),
    gettext_noop("e.g. x=1, y=2, name='John'"),
    gettext_noop("last_run"),
    gettext_noop("n = n times, -1 = forever"),
    gettext_noop("success"),
)


# Django's admin strings newer than its Indonesian catalogue: the date hierarchy's label.
DJANGO_ADMIN_GAPS = (gettext_noop("Filter by %(field_name)s"),)


class ZeroTPConfig(AppConfig):
    """The project package as an app: a place to connect the job log to django-q2."""

    name = "zerotp"
    verbose_name = "ZeroTP"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from zerotp.logs import job_finished, job_started

        pre_execute.connect(job_started, dispatch_uid="zerotp.logs.job_started")
        post_execute_in_worker.connect(job_finished, dispatch_uid="zerotp.logs.job_finished")
