"""gunicorn's settings for the site (`make serve`, the Procfile's web line):
`.venv/bin/gunicorn -c zerotp/gunicorn.conf.py`. HOST, PORT and WEB_CONCURRENCY (worker
processes) come from the environment; a command-line flag still wins over this file.

The worker is gunicorn's asyncio one serving zerotp/asgi.py, chosen by measurement
(tests/reliability/test_serve.py): with sync or gthread workers, a few clients that declare
a body and send it slowly hold every thread; here the event loop reads every request whole
before a thread runs Django, and bounds how long the headers and the body may take.
"""

import os

wsgi_app = "zerotp.asgi:application"
worker_class = "zerotp.serving.Worker"
bind = [f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"]  # noqa: S104
# Each process runs Django in 4 threads (zerotp/asgi.py), one database connection each.
workers = int(os.environ.get("WEB_CONCURRENCY", (os.cpu_count() or 1) + 1))
asgi_lifespan = "off"
# A worker that stops answering its master's heartbeat this long is restarted; also the
# longest wait for the next piece of a request body (the whole body: 20 s, zerotp/asgi.py).
timeout = 30
# After SIGTERM: stop accepting, finish the requests under way, cut what is left after this.
graceful_timeout = 10
keepalive = 5
# Request line and headers keep gunicorn's limits (4094 bytes; 100 fields of 8190 bytes);
# over them the answer is the API's error envelope (zerotp/serving.py).
# gunicornc's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): several
# gunicorns on one machine would take it from each other, and nothing here uses it.
control_socket_disable = True
