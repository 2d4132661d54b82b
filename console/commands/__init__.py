"""One module per ``verdict`` sub-command."""
