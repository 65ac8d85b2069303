"""What the staff console reads and does about people, across the domains:
a person's whole record (profile), finding them by any key (search), and the
figures of the dashboard. Views call these; the statements live here."""
