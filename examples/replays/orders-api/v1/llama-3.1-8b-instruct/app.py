import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

orders = [
    {"id": 1, "customer": "Ada", "items": ["notebook", "pen"], "total": 14.5},
    {"id": 2, "customer": "Grace", "items": ["backpack"], "total": 49.0},
    {"id": 3, "customer": "Linus", "items": ["mug", "coffee beans"], "total": 21.75},
]


class Handler(BaseHTTPRequestHandler):
    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self._json(200, {"service": "orders", "orders": len(orders)})
        elif self.path == "/orders":
            self._json(200, orders)
        elif self.path.startswith("/orders/"):
            order_id = int(self.path.split("/")[-1])
            match = [o for o in orders if o["id"] == order_id]
            if match:
                self._json(200, match[0])
            else:
                self._json(404, {"error": "order not found",
                                 "id": order_id
