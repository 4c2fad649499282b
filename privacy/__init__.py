"""Privacy: right of access, right to erasure, retention and the audit log page.
The top of the apps (it reads and erases every app's rows about a person)."""
