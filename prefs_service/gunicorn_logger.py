"""Gunicorn's own log lines (arbiter and workers: "Listening at", "Booting
worker", "Invalid request from ip=…", errors) as our JSON lines, scrubbed.

`prefs serve` uses it; for gunicorn run by hand, pass
`--logger-class prefs_service.gunicorn_logger.JsonLogger`.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from . import logs


class JsonLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        logs.configure(cfg.loglevel.upper())  # the handler may not exist yet when gunicorn starts first
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):  # gunicorn's plain-text stream, file and syslog handlers
                log.removeHandler(handler)
            log.propagate = True  # to the root logger, and its JSON handler
