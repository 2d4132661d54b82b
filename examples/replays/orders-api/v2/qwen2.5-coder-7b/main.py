"""Entry point: start the orders service on $PORT."""

from http.server import ThreadingHTTPServer

from handlers import OrdersHandler
from server import PORT


def main():
    httpd = ThreadingHTTPServer(("0.0.0.0", PORT), OrdersHandler)
    print(f"Orders service listening on port {PORT}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
