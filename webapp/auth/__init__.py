"""Sign-in with OpenID Connect: the verified email is the `userEmail` Alix Pay requires."""
