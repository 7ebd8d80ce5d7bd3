"""The bare forwarder (bench/forwarder.py) served by naftiko's own HTTP/1.1 protocol instead of uvicorn's.

    UPSTREAM=http://127.0.0.1:9999 python bench/forwarder_naftiko_http.py PORT

Same app, same uvicorn server and uvloop; only the per-connection protocol differs
(``naftiko.runtime.httpserver.protocol_for`` with default limits). ``bench/instructions.py
--server own=forwarder-naftiko-http`` counts it, to compare naftiko's protocol with uvicorn's
httptools protocol on the same work.
"""

import sys

import uvicorn

from forwarder import app
from naftiko.exposes.http.limits import InboundLimits
from naftiko.runtime.httpserver import ConnectionBudget, protocol_for

if __name__ == "__main__":
    limits = InboundLimits()
    http = protocol_for(limits, ConnectionBudget(limits.max_connections))
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), http=http, loop="uvloop", access_log=False, log_level="warning",
        lifespan="off",
    )
