"""A notes API in the shape models usually generate: Flask, SQLAlchemy on SQLite, CORS, a
.env file.  Benchmark fixture: the dependency set is the point, not the app."""

import os

from dotenv import load_dotenv
from flask import Flask, jsonify, request
from flask_cors import CORS
from flask_sqlalchemy import SQLAlchemy

load_dotenv()

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///notes.db")
CORS(app)
db = SQLAlchemy(app)


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(500), nullable=False)


with app.app_context():
    db.create_all()


@app.get("/")
def index():
    return jsonify(notes=[{"id": n.id, "text": n.text} for n in Note.query.all()])


@app.post("/notes")
def add_note():
    note = Note(text=request.json["text"])
    db.session.add(note)
    db.session.commit()
    return jsonify(id=note.id), 201
