module.exports = [
  { id: 1, name: "Notebook", price: 4.5 },
  { id: 2, name: "Backpack", price: 49.0 },
  { id: 3, name: "Coffee mug", price: 9.75 },
];
