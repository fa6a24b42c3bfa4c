"""Command line interface (click)."""
