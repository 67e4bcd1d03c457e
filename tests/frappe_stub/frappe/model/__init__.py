"""frappe.model for the stand-in (Document, naming)."""
