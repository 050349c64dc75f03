"""The command-line front-end: parse → call one facade method → render."""
