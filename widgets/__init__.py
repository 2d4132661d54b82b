"""Textual widgets: each renders data it is given and never starts work itself."""
