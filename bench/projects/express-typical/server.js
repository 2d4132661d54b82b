// A users API in the shape models usually generate: Express with the usual middleware.
// Benchmark fixture: the dependency set is the point, not the app.
require("dotenv").config();
const express = require("express");
const cors = require("cors");
const helmet = require("helmet");
const morgan = require("morgan");
const Joi = require("joi");
const jwt = require("jsonwebtoken");
const bcrypt = require("bcryptjs");
const { v4: uuid } = require("uuid");

const app = express();
app.use(cors());
app.use(helmet());
app.use(morgan("tiny"));
app.use(express.json());

const users = new Map();
const schema = Joi.object({ name: Joi.string().min(1).required(), password: Joi.string().min(8) });
const secret = process.env.JWT_SECRET || "dev-secret";

app.get("/", (req, res) => res.json({ users: users.size }));

app.post("/users", (req, res) => {
  const { error, value } = schema.validate(req.body);
  if (error) return res.status(400).json({ error: error.message });
  const id = uuid();
  users.set(id, { name: value.name, hash: bcrypt.hashSync(value.password || "", 8) });
  res.status(201).json({ id, token: jwt.sign({ id }, secret) });
});

const port = process.env.PORT || 3000;
app.listen(port, () => console.log(`listening on ${port}`));
