import json
import os
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer

ORDERS = [
    {"id": 1, "customer": "Ada", "items": ["notebook", "pen"], "total": 14.5},
    {"id": 2, "customer": "Grace", "items": ["backpack"], "amount": 49.0},
    {"id": 3, "customer": "Linus", "items": ["mug", "coffee beans"], "total": 21.75},
]


def summary():
    revenue = sum(order["total"] for order in ORDERS)
    return {"service": "orders", "orders": len(ORDERS), "revenue": revenue}


ROUTES = {
    "/": summary,
    "/orders": lambda: ORDERS,
    "/health": lambda: {"status": "ok"},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        route = ROUTES.get(self.path)
        if route is None and self.path.startswith("/orders/"):
            order_id = self.path.rsplit("/", 1)[1]
            found = [o for o in ORDERS if str(o["id"]) == order_id]
            route = (lambda: found[0]) if found else None
        if route is None:
            self.reply(404, {"error": "not found"})
            return
        try:
            self.reply(200, route())
        except Exception as exc:
            traceback.print_exc()
            self.reply(500, {"error": str(exc)})

    def reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.getenv("PORT", "8080"))
    print(f"Serving orders on :{port}", flush=True)
    HTTPServer(("", port), Handler).serve_forever()
