"""BTU Email Recipient: child table of BTU Task Schedule (email_recipients)."""

from frappe.model.document import Document


class BTUEmailRecipient(Document):
    pass
