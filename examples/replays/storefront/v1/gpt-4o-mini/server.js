const http = require("http");

const products = [
  { id: 1, name: "Notebook", price: 4.5 },
  { id: 2, name: "Backpack", price: 49.0 },
  { id: 3, name: "Coffee mug", price: 9.75 },
];

const server = http.createServer((req, res) => {
  if (req.url === "/api/products") {
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(JSON.stringify(products));
  }
  if (req.url === "/health") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    return res.end("ok");
  }
  if (req.url === "/") {
    const items = products.map((p) => `<li>${p.name}: $${p.price.toFixed(2)}</li>`).join("");
    res.writeHead(200, { "Content-Type": "text/html" });
    return res.end(`<html><body><h1>Storefront</h1><ul>${items}</ul></body></html>`);
  }
  res.writeHead(404);
  res.end("Not found");
});

// Start on 3000; if it is taken, try the next port.
let port = 3000;
server.on("error", (err) => {
  if (err.code === "EADDRINUSE" && port < 3100) {
    console.log(`Port ${port} in use, trying ${port + 1}...`);
    port += 1;
    server.listen(port);
  } else {
    throw err;
  }
});
server.listen(port, () => {
  console.log(`Storefront running at http://localhost:${port}/`);
});
