// Storefront: an HTML product page and a JSON product list (Node built-ins only).
const http = require("http");

const PORT = Number(process.env.PORT) || 3000;

const products = [
  { id: 1, name: "Notebook", price: 4.5 },
  { id: 2, name: "Backpack", price: 49.0 },
  { id: 3, name: "Coffee mug", price: 9.75 },
];

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

function renderPage() {
  const rows = products
    .map((p) => `<li>${escapeHtml(p.name)} — $${p.price.toFixed(2)}</li>`)
    .join("\n");
  return `<!doctype html><html><head><title>Shop</title></head>` +
    `<body><h1>Products</h1><ul>${rows}</ul></body></html>`;
}

function send(res, status, type, body) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  try {
    const path = req.url.split("?")[0];
    if (req.method === "GET" && path === "/") {
      send(res, 200, "text/html; charset=utf-8", renderPage());
    } else if (req.method === "GET" && path === "/api/products") {
      send(res, 200, "application/json", JSON.stringify(products));
    } else if (req.method === "GET" && path === "/health") {
      send(res, 200, "application/json", JSON.stringify({ status: "ok" }));
    } else {
      send(res, 404, "application/json", JSON.stringify({ error: "not found" }));
    }
  } catch (err) {
    console.error(err);
    send(res, 500, "application/json", JSON.stringify({ error: "internal server error" }));
  }
});

server.listen(PORT, "0.0.0.0", () => {
  console.log(`storefront listening on port ${PORT}`);
});
