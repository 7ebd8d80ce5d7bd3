"""Observability: metrics, traces and request logs of a served capability.

- :mod:`.settings` — the control adapter's ``observability`` block, compiled at load
- :mod:`.telemetry` — :class:`Telemetry`, the one interface serving code calls (inactive → no work)
- :mod:`.metrics` — prometheus-client registry and instruments behind ``/metrics``
- :mod:`.tracing` — OpenTelemetry spans, sampling, propagation, OTLP export
- :mod:`.buffer` — the ring buffer of completed traces behind ``/traces``
- :mod:`.inbound` / :mod:`.outbound` — the request and upstream-call observers
- :mod:`.logs` — ``--log-format text|json`` and the per-request log line

Heavy imports (prometheus-client, the OpenTelemetry SDK) happen only when a part is switched on.
"""
