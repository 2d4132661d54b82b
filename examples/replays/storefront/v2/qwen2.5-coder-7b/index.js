const http = require("http");
const products = require("./products");

const port = parseInt(process.env.PORT || "8080", 10);

const page = () => `<!DOCTYPE html>
<html>
  <head><meta charset="utf-8"><title>Storefront</title></head>
  <body>
    <h1>Our products</h1>
    <table>
      ${products.map((p) => `<tr><td>${p.name}</td><td>$${p.price.toFixed(2)}</td></tr>`).join("")}
    </table>
  </body>
</html>`;

const routes = {
  "/": (res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end(page());
  },
  "/api/products": (res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(products));
  },
  "/health": (res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ status: "ok" }));
  },
};

http
  .createServer((req, res) => {
    const handler = routes[req.url.split("?")[0]];
    if (!handler) {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: "Not found" }));
      return;
    }
    try {
      handler(res);
    } catch (err) {
      console.error("request failed:", err);
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: "Internal Server Error" }));
    }
  })
  .listen(port, "0.0.0.0", () => console.log(`Server running on port ${port}`));
