"""Request handlers for the orders service."""

import json
import traceback
from http.server import BaseHTTPRequestHandler

ORDERS = [
    {"id": 1, "customer": "Ada", "items": ["notebook", "pen"], "total": 14.5},
    {"id": 2, "customer": "Grace", "items": ["backpack"], "total": 49.0},
    {"id": 3, "customer": "Linus", "items": ["mug", "coffee beans"], "total": 21.75},
]


class OrdersHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            if self.path == "/":
                self.send_json(200, {"service": "orders", "orders": len(ORDERS)})
            elif self.path == "/health":
                self.send_json(200, {"status": "ok"})
            elif self.path == "/orders":
                self.send_json(200, ORDERS)
            elif self.path.startswith("/orders/"):
                order_id = self.path.rsplit("/", 1)[1]
                order = next((o for o in ORDERS if str(o["id"]) == order_id), None)
                if order:
                    self.send_json(200, order)
                else:
                    self.send_json(404, {"error": "order not found"})
            else:
                self.send_json(404, {"error": "not found"})
        except Exception:
            traceback.print_exc()
            self.send_json(500, {"error": "internal server error"})

    def send_json(self, status, payload):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
