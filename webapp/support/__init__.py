"""The support console: find any order, see its whole story, act on it, with personal data masked and audited."""
