const http = require("http");

const PORT = process.env.PORT || 8080;

const products = [
  { id: 1, name: "Notebook", price: 4.5 },
  { id: 2, name: "Backpack", price: 49.0 },
  { id: 3, name: "Coffee mug", price: 9.75 },
];

function handler(req, res) {
  if (req.url === "/api/products") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(products));
  } else if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end('{"status":"ok"}');
  } else if (req.url === "/") {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<h1>Storefront</h1>" + products.map((p) => `<p>${p.name} $${p.price}</p>`).join(""));
  } else {
    res.writeHead(404);
    res.end();
  }
}

const server = http.createServer(handler);
server.listen(PORT, () => {
  console.log(`Server listening on port ${PORT}`);
});

// Start the server
http.createServer(handler).listen(PORT, () => {
  console.log(`Storefront is running on http://localhost:${PORT}`);
});
