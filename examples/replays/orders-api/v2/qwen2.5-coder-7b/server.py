"""HTTP server setup for the orders service."""

import os
from http.server import ThreadingHTTPServer

from handlers import OrdersHandler

PORT = int(os.environ.get("PORT", "8000"))

# Shared server instance so other modules can reuse it.
server = ThreadingHTTPServer(("0.0.0.0", PORT), OrdersHandler)
