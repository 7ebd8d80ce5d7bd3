"""naftiko's REST adapter as an ASGI app for granian, to measure granian in place of uvicorn (issue 12).

    NAFTIKO_CAPABILITY=capabilities/metronome-customers.yaml UPSTREAM=http://127.0.0.1:9999 \\
    METRONOME_API_KEY=x granian --interface asgi --loop uvloop --no-ws --working-dir bench granian_app:app

The app is built as ``naftiko-run`` builds it (compiled plan, inbound observer and request log at
the default log level info, the REST router); only the HTTP server differs. It is a measurement
aid, not a way to serve naftiko: granian runs none of naftiko's own inbound limits
(runtime/httpserver.py), start-up checks, drain or ``--workers`` handling.
"""

import os

from naftiko.document.loader import load
from naftiko.engine.plan import Options, compile_plan
from naftiko.observability.logs import configure_logging
from naftiko.runtime.serve import build_app

configure_logging(os.environ.get("NAFTIKO_LOG_LEVEL", "info"))
_plan = compile_plan(
    load(os.environ["NAFTIKO_CAPABILITY"]),
    Options(base_uris={os.environ.get("NAFTIKO_NAMESPACE", "metronome-customers"): os.environ["UPSTREAM"]}),
)
app = build_app(next(a for a in _plan.adapters if a.kind == "rest"), _plan)
