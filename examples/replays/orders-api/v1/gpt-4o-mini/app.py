import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from order_store import ORDERS, find_order


class OrdersHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            self.respond(200, {"service": "orders", "orders": len(ORDERS)})
        elif self.path == "/health":
            self.respond(200, {"status": "ok"})
        elif self.path == "/orders":
            self.respond(200, ORDERS)
        elif self.path.startswith("/orders/"):
            order = find_order(self.path.rsplit("/", 1)[1])
            if order:
                self.respond(200, order)
            else:
                self.respond(404, {"error": "order not found"})
        else:
            self.respond(404, {"error": "not found"})

    def respond(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", 8000))
    print(f"Listening on http://0.0.0.0:{port}")
    HTTPServer(("0.0.0.0", port), OrdersHandler).serve_forever()
