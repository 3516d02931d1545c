from django.apps import AppConfig


class ZeroTPConfig(AppConfig):
    """The project package as an app: a place to connect the job log to django-q2."""

    name = "zerotp"
    verbose_name = "ZeroTP"

    def ready(self) -> None:
        from django_q.signals import post_execute_in_worker, pre_execute

        from zerotp.logs import job_finished, job_started

        pre_execute.connect(job_started, dispatch_uid="zerotp.logs.job_started")
        post_execute_in_worker.connect(job_finished, dispatch_uid="zerotp.logs.job_finished")
