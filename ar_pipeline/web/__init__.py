"""The approver's page (``ar-pipeline web``): the app, the sign-in accounts, server-side
sessions, the list queries and the HTML templates."""
