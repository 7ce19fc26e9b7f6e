"""Everything that speaks the Alix Pay contract; no web-framework imports in this package."""
