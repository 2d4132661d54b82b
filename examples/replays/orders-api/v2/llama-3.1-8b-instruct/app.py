"""Orders API: a small JSON service for the shop's orders (standard library only)."""

import json
import os
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = [
    {"id": 1, "customer": "Ada", "items": ["notebook", "pen"], "total": 14.5},
    {"id": 2, "customer": "Grace", "items": ["backpack"], "total": 49.0},
    {"id": 3, "customer": "Linus", "items": ["mug", "coffee beans"], "total": 21.75},
]


class OrdersHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            self.route()
        except Exception:
            traceback.print_exc()
            self.send_json(500, {"error": "internal server error"})

    def route(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/":
            self.send_json(200, {"service": "orders", "orders": len(ORDERS)})
        elif path == "/healthz":
            self.send_json(200, {"status": "ok"})
        elif path == "/orders":
            self.send_json(200, ORDERS)
        elif path.startswith("/orders/"):
            order_id = path.rsplit("/", 1)[1]
            order = next((o for o in ORDERS if str(o["id"]) == order_id), None)
            if order is None:
                self.send_json(404, {"error": f"order {order_id} not found"})
            else:
                self.send_json(200, order)
        else:
            self.send_json(404, {"error": "not found"})

    def send_json(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer(("0.0.0.0", port), OrdersHandler)
    print(f"Orders service listening on port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
