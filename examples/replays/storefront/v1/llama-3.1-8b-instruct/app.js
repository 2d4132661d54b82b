const express = require("express");

const app = express();
const PORT = process.env.PORT || 3000;

const products = [
  { id: 1, name: "Notebook", price: 4.5 },
  { id: 2, name: "Backpack", price: 49.0 },
  { id: 3, name: "Coffee mug", price: 9.75 },
];

app.get("/", (req, res) => {
  const list = products.map((p) => `<li>${p.name} - $${p.price.toFixed(2)}</li>`).join("");
  res.send(`<h1>Storefront</h1><ul>${list}</ul>`);
});

app.get("/api/products", (req, res) => res.json(products));

app.listen(PORT, () => console.log(`Server listening on port ${PORT}`));
