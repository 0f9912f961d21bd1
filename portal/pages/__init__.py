"""Portal pages.  Each page module has PATH, TITLE_KEY, ROLES, `layout(ctx, user, lang)` and optionally
`register(app, ctx)` for its callbacks.  The navigation shows a user only the pages its role may open, and the
router refuses the others (the data access layer enforces the same rules again under every query)."""
